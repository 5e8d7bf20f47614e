"""TensorRT engines for a bundle (``edgevid build``), built on the device.

- ``plan.py``: what to build per role (precision from the family's rules and quantize's record, source ONNX,
  builder flags or strongly typed, calibration, DLA), and whether an engine in the bundle can be reused;
- ``best.py``: the fastest candidate the quantize report allows, from measured timings;
- ``trtexec.py``: the same plan as trtexec command lines (no TensorRT needed);
- ``layers.py``, ``calibration.py``, ``failures.py``: layer precisions read back, implicit-INT8 inputs, errors;
- ``trt_ops.py``: the only module that calls TensorRT; ``builder.py``: the build itself.

Layer: commands → build → quant, backends → bundle. Nothing here imports TensorRT at module import.
"""
from __future__ import annotations

from .plan import CALIBRATIONS, PRECISIONS, BuildPlan, Caps, RolePlan, make_plan

__all__ = ["CALIBRATIONS", "PRECISIONS", "BuildPlan", "Caps", "RolePlan", "make_plan"]
