"""Precision: calibration feeds recorded through the runtime (calibrate.py), from recipes (recipe.py).
Names are imported on first use; torch is never needed here."""
from __future__ import annotations

from .._optional import lazy_attributes

_LAZY = {"calibrate": ".calibrate", "load_feeds": ".calibrate", "RecordingSession": ".calibrate",
         "Calibration": ".calibrate", "load_recipe": ".recipe", "Recipe": ".recipe",
         "quantize_trt": ".trt_int8", "check_trt_qdq": ".trt_int8", "sensitivity": ".trt_int8",
         "keep_higher": ".trt_int8"}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)
