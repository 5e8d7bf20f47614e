"""Export side (workstation): torch → per-role ONNX graphs, contract and TensorRT checks, bundle writer.

Importing this package imports torch (through the model code); the device side never needs it.
"""
from __future__ import annotations

from .bundle import POLICY_DEFAULTS, export_bundle
from .onnx import check_tensorrt_compatible, export_onnx
from .slowfast import export_slowfast

__all__ = ["export_bundle", "export_slowfast", "export_onnx", "check_tensorrt_compatible", "POLICY_DEFAULTS"]
