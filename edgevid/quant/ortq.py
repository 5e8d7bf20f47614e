"""Calling onnxruntime.quantization from a library that never prints: its calibrators print to stdout
(percentile ranges) and it warns on the root logger that a model was not pre-processed (edgevid's TensorRT
form is not, on purpose: ORT's optimizer renames tensors, and the calibration cache is keyed by the FP32
graph's names). Both are kept off the user's terminal; edgevid logs what it did itself."""
from __future__ import annotations

import contextlib
import io
import logging
from typing import Iterator


@contextlib.contextmanager
def quiet_quantizer() -> Iterator[None]:
    class Drop(logging.Filter):
        def filter(self, record):
            return "pre-process" not in record.getMessage()

    root, drop = logging.getLogger(), Drop()
    root.addFilter(drop)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.removeFilter(drop)
