"""Activation statistics of one role over its recorded calibration feeds, computed once and shared.

The same ranges feed the TensorRT Q/DQ graph (through onnxruntime.quantization's calibration cache), the
native TensorRT calibration cache and the sensitivity sweep, so the three never disagree about a scale and
the feeds are run through the calibrator only once per role and method.
"""
from __future__ import annotations

import contextlib
import io
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, Mapping, Optional

import numpy as np

from ..bundle import Bundle
from ..errors import ConfigError
from .feeds import STREAM_KEY, load_feeds

METHODS = ("entropy", "percentile", "minmax")


@dataclass
class Activations:
    """Per-tensor ranges of one role's FP32 graph: ``ranges`` {tensor: (lowest, highest)} for every float
    activation (inputs and outputs of every node), ``tensors_data`` the same as onnxruntime's TensorsData,
    and where they came from (the calibration artifact, its data hash, how many samples)."""

    role: str
    method: str
    percentile: Optional[float]
    ranges: Dict[str, tuple]
    tensors_data: Any
    calibration_file: str
    recipe: str
    data_sha256: str
    samples: int

    def amax(self, tensor: str) -> float:
        """The symmetric range TensorRT uses: max(|lowest|, |highest|)."""
        lo, hi = self.ranges[tensor]
        return float(max(abs(lo), abs(hi)))


def feed_list(feeds: Mapping[str, np.ndarray], limit: Optional[int] = None) -> list:
    """The stacked feeds as one {input: [1, …]} dict per recorded call (at most ``limit``, evenly spaced)."""
    names = [k for k in feeds if k != STREAM_KEY]
    n = len(feeds[names[0]])
    picked = range(n) if limit is None or limit >= n else np.unique(np.linspace(0, n - 1, limit).round().astype(int))
    return [{name: feeds[name][k:k + 1] for name in names} for k in picked]


class FeedReader:
    """onnxruntime.quantization CalibrationDataReader over recorded feeds (imported lazily, hence duck-typed:
    the calibrator only calls get_next)."""

    def __init__(self, feeds: list):
        self._feeds = feeds
        self._it: Iterator = iter(feeds)

    def get_next(self):
        return next(self._it, None)

    def __len__(self) -> int:
        return len(self._feeds)


def _calibration_method(method: str):
    from onnxruntime.quantization import CalibrationMethod

    if method not in METHODS:
        raise ConfigError("unknown calibration method %r" % method, "edgevid knows " + ", ".join(METHODS),
                          "use entropy (TensorRT's default), percentile or minmax")
    return {"entropy": CalibrationMethod.Entropy, "percentile": CalibrationMethod.Percentile,
            "minmax": CalibrationMethod.MinMax}[method]


def collect(bundle: Bundle, role: str, method: str = "entropy", percentile: float = 99.999,
            feeds: Optional[Mapping[str, np.ndarray]] = None) -> Activations:
    """Run the role's FP32 graph over its calibration feeds and compute every activation's range.

    CalibrationError (from load_feeds) when the role has no feeds or they are stale."""
    _calibration_method(method)  # an unknown method is refused before any work
    feeds = load_feeds(bundle, role) if feeds is None else feeds
    artifact = bundle.graph(role).find("calibration")[-1]
    listed = feed_list(feeds)
    ranges, data = model_ranges(bundle.root / bundle.graph(role).file, listed, method, percentile)
    return Activations(role, method, percentile if method == "percentile" else None, ranges, data,
                       artifact.file, str(artifact.info.get("recipe")), str(artifact.info.get("data_sha256")),
                       len(listed))


def model_ranges(model_path, feeds: list, method: str = "entropy", percentile: float = 99.999):
    """({tensor: (lowest, highest)}, onnxruntime TensorsData) of every float tensor of the ONNX graph at
    ``model_path`` over ``feeds`` (a list of feed dicts)."""
    import onnx
    from onnxruntime.quantization.calibrate import create_calibrator
    from onnxruntime.quantization.quant_utils import save_and_reload_model_with_shape_infer

    calib_method = _calibration_method(method)
    # TensorRT's calibrators are symmetric (one amax per tensor), so the histogram methods look at |x|.
    options: Dict[str, Any] = {"symmetric": True}
    if method == "percentile":
        options["percentile"] = float(percentile)
    model = save_and_reload_model_with_shape_infer(onnx.load(str(model_path)))
    with tempfile.TemporaryDirectory(prefix="edgevid-calib-") as tmp:
        source = Path(tmp) / "model.onnx"
        onnx.save(model, str(source))
        # op_types None: every float tensor, because TensorRT's implicit INT8 cache wants all of them.
        calibrator = create_calibrator(source, None, augmented_model_path=str(Path(tmp) / "augmented.onnx"),
                                       calibrate_method=calib_method, providers=["CPUExecutionProvider"],
                                       extra_options=options)
        with contextlib.redirect_stdout(io.StringIO()):  # its calibrators print progress; edgevid never prints
            calibrator.collect_data(FeedReader(feeds))
            data = calibrator.compute_data()
        del calibrator
    # MinMax gives 1-element arrays, the histogram methods scalars
    ranges = {name: (float(np.min(t.range_value[0])), float(np.max(t.range_value[1])))
              for name, t in data.data.items()}
    return ranges, data
