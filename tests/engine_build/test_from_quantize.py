"""The build plan over what edgevid calibrate and quantize really write (not entered by hand): the Q/DQ graph,
the calibration cache, the precision record and the report are where plan.py and best.py look for them."""
from __future__ import annotations

import pytest

from edgevid.bundle import load_bundle
from edgevid.engine_build.plan import make_plan
from tests.engine_build.conftest import DESKTOP, TRT8, TRT11, XAVIER

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytest.importorskip("cv2")

RECIPE = {"name": "t", "streams": ["synthetic:seed=3,segments=3,frames=16,fps=10"], "min_samples": 4}
STREAM = "synthetic:seed=5,segments=3,frames=16,fps=10"


@pytest.fixture
def quantized_for_real(prernn_bundle):
    from edgevid.quant import calibrate, quantize

    calibrate(prernn_bundle.root, RECIPE)
    quantize(load_bundle(prernn_bundle.root), "int8", target="trt", options={"method": "minmax"}, streams=[STREAM])
    return load_bundle(prernn_bundle.root)


def test_int8_and_best_plans_over_real_quantize_output(quantized_for_real):
    bundle = quantized_for_real
    items = {i.role: i for i in make_plan(bundle, "int8", XAVIER, TRT8).items}
    assert items["backbone"].source == "backbone.int8.trt.onnx" and items["step"].precision == "fp32"
    cache = {i.role: i for i in make_plan(bundle, "int8", XAVIER, TRT8, calibration="cache").items}["backbone"]
    assert cache.calibration_file == "backbone.calib.cache"
    feeds = {i.role: i for i in make_plan(bundle, "int8", XAVIER, TRT8, calibration="feeds").items}["backbone"]
    assert feeds.calibration_file == "calibration/backbone.npz"
    best = make_plan(bundle, "best", XAVIER, TRT8)
    assert sorted((i.role, i.precision) for i in best.items) == [
        ("backbone", "fp32"), ("backbone", "int8"), ("step", "fp32")]
    assert "has not made it" in best.excluded["backbone"]["fp16"]
    strongly = {i.role: i for i in make_plan(bundle, "int8", DESKTOP, TRT11).items}["backbone"]
    assert strongly.strongly_typed and strongly.flags == ()


def test_the_stored_minmax_cache_is_read_by_its_own_calibrator_class(quantized_for_real):
    from edgevid.engine_build.calibration import load_cache

    data, algorithm, adapted = load_cache(quantized_for_real, "backbone.calib.cache", "10.3.0.30")
    assert algorithm == "MinMaxCalibration" and adapted
    assert data.decode().startswith("TRT-100300-MinMaxCalibration\n")
