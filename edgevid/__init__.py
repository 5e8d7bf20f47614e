"""edgevid: video action recognition from training to NVIDIA Jetson.

The public API is small and imports nothing heavy: names are resolved on first use, so
``import edgevid`` works on a device without torch, onnx, onnxruntime, TensorRT or OpenCV.
"""
from __future__ import annotations

from ._optional import lazy_attributes

from .errors import (  # noqa: F401
    BuildError, CalibrationError, CheckpointError, ConfigError, DataError, DependencyError, EdgevidError,
    EngineMismatchError, ExportError, FrameError, ManifestError, OutputError, SessionError, SourceError,
    TelemetryError,
)

from ._version import __version__  # noqa: E402,F401

# public name -> module that defines it, imported on first access (PEP 562)
_LAZY = {
    "load_bundle": ".bundle",
    "Bundle": ".bundle",
    "open_session": ".backends",
    "open_role": ".backends",
    "session_factory": ".backends",
    "StreamRuntime": ".runtime.stream",
    "Prediction": ".runtime.prediction",
    "open_source": ".runtime.source",
    "export_bundle": ".export",
}


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)
