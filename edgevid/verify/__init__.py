"""Parity of an exported bundle with the PyTorch model it came from, one module per family:
``liteeval`` (per graph and a free-running gated stream), ``slowfast`` (clips of stream frames),
``prernn`` (backbone, teacher-forced steps and a free-running stream with carried state); shared
helpers in ``common``; and of one backend with another (``backends``: TensorRT engines against ONNX Runtime,
no checkpoint needed). Mismatches are reported (``report["ok"]``), never raised; ExportError means a
check could not run. torch is imported inside the functions, so these modules import on a device.
"""
from __future__ import annotations

from .._optional import lazy_attributes

_LAZY = {
    "verify_liteeval": ".liteeval", "verify_liteeval_steps": ".liteeval", "describe_report": ".liteeval",
    "verify_slowfast": ".slowfast", "describe_slowfast_report": ".slowfast", "clip_windows": ".slowfast",
    "verify_prernn": ".prernn", "describe_prernn_report": ".prernn",
    "family_bundle": ".common", "DEFAULT_STEPS": ".common",
    "verify_backend": ".backends", "describe_backend_report": ".backends",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)
