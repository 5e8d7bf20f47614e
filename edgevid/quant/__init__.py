"""Precision: calibration feeds recorded through the runtime (feeds.py, from recipes in recipe.py); INT8 in
TensorRT's form (trt_int8.py) and ONNX Runtime's CPU form (cpu_int8.py); FP16 (fp16.py, ranges.py); the plan
which layers stay float (keep.py) and the report of what each precision costs (apply.py, report.py). Names are imported on first use; torch
is never needed here."""
from __future__ import annotations

from .._optional import lazy_attributes

_LAZY = {"calibrate": ".feeds", "load_feeds": ".feeds", "RecordingSession": ".feeds",
         "Calibration": ".feeds", "load_recipe": ".recipe", "Recipe": ".recipe",
         "quantize_trt": ".trt_int8", "check_trt_qdq": ".trt_int8", "sensitivity": ".trt_int8",
         "choose_float_layers": ".keep", "quantize_cpu": ".cpu_int8", "convert_fp16": ".fp16", "quantize": ".apply",
         "compare": ".report"}

__all__ = sorted(_LAZY)

# function names must not be module names here: importing a submodule sets the package attribute of its name
__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)
