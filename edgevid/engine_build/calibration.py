"""Implicit INT8 (TensorRT 8.x/10.x, ``--calibration cache|feeds``): the stored calibration cache made ready for
the device's TensorRT, and the stored feeds for an on-device calibrator.

TensorRT discards a cache whose first line names another TensorRT version or calibrator and then calibrates
again, which without data fails (tensorrt-facts.md §2). The scales in the cache do not depend on the version,
so the header is rewritten for the device's exact version; the calibrator class is the one the cache names.
"""
from __future__ import annotations

from typing import Any, Dict, Tuple

from ..errors import BuildError

METHODS = {"EntropyCalibration2": "entropy", "MinMaxCalibration": "minmax"}  # cache tag -> quantize method


def cache_for_device(text: str, trt_version: str) -> Tuple[bytes, str, bool]:
    """(cache bytes for this TensorRT, calibrator tag, whether the header was rewritten)."""
    from ..quant.trt_int8 import trt_header

    lines = text.splitlines()
    head = lines[0] if lines else ""
    parts = head.split("-", 2)
    if len(parts) != 3 or parts[0] != "TRT" or parts[2] not in METHODS:
        raise BuildError("the calibration cache does not start with a TensorRT header",
                         "line 1 is %r; expected TRT-<version>-EntropyCalibration2 or -MinMaxCalibration" % head,
                         "make it again: edgevid quantize BUNDLE --precision int8")
    wanted = trt_header(trt_version, METHODS[parts[2]])
    body = "\n".join([wanted] + lines[1:]) + "\n"
    return body.encode(), parts[2], wanted != head


def load_cache(bundle: Any, artifact_file: str, trt_version: str) -> Tuple[bytes, str, bool]:
    """The stored cache ``artifact_file`` of the bundle, ready for ``trt_version``."""
    return cache_for_device((bundle.root / artifact_file).read_text(), trt_version)


def load_feeds(bundle: Any, role: str) -> Dict[str, Any]:
    """The role's recorded calibration feeds {input: [N, …]} (CalibrationError when missing or stale)."""
    from ..quant.feeds import STREAM_KEY, load_feeds as load

    return {name: value for name, value in load(bundle, role).items() if name != STREAM_KEY}
