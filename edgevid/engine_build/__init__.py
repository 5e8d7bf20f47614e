"""TensorRT engines for a bundle (``edgevid build``), built on the device.

- ``plan.py``: what to build per role (precision from the family's rules and quantize's record, source ONNX,
  builder flags or strongly typed, calibration, DLA), and whether an engine in the bundle can be reused;
- ``best.py``: the fastest candidate the quantize report allows, from measured timings;
- ``trtexec.py``: the same plan as trtexec command lines (no TensorRT needed);
- ``layers.py``, ``calibration.py``, ``failures.py``: layer precisions read back, implicit-INT8 inputs, errors;
- ``trt_ops.py``: the TensorRT calls only a build makes; ``builder.py``: the build itself. What building shares
  with running engines (tensorrt, the one logger, deserializing, the device, CUDA, timing through a TrtSession)
  is the backend's (backends/trt.py, backends/cuda.py), and the precision of each role is the rule a run
  follows too (backends/registry.py ``role_precision``).

Layer: commands → build → quant, backends → bundle. Nothing here imports TensorRT at module import.
"""
from __future__ import annotations

from .plan import CALIBRATIONS, PRECISIONS, BuildPlan, Caps, RolePlan, make_plan

__all__ = ["CALIBRATIONS", "PRECISIONS", "BuildPlan", "Caps", "RolePlan", "make_plan"]
