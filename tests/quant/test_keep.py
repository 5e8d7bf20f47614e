"""Which layers stay float (quant/keep.py): measured end to end on the calibration streams, the fewest that meet
the target, the best measured otherwise, each with why; quantize records them. Tiny fixtures, no torch."""
from __future__ import annotations

import pytest

from edgevid.bundle import load_bundle
from edgevid.errors import CalibrationError
from tests.helpers import bundles as fixture_bundles

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("cv2")

from edgevid.quant import calibrate, quantize_trt  # noqa: E402
from edgevid.quant.keep import _ladder, _within, calibration_streams, choose_float_layers  # noqa: E402

RECIPE = {"name": "t", "streams": ["synthetic:seed=3,segments=2,frames=12,fps=10"], "min_samples": 4}


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    root = fixture_bundles.copy_bundle(fixture_bundles.LITEEVAL["mixed"], tmp_path_factory.mktemp("k") / "b")
    calibrate(root, RECIPE)
    return load_bundle(root)


def test_met_at_once_keeps_every_layer_int8(calibrated):
    made = {"fine_cnn": quantize_trt(calibrated, "fine_cnn")}
    choice = choose_float_layers(calibrated, made, 0.0)
    assert choice.met and choice.float_layers == {} and choice.artifacts is made
    assert choice.streams == RECIPE["streams"] and len(choice.candidates) == 1


def test_an_unreachable_target_measures_candidates_and_says_why(calibrated):
    made = {"fine_cnn": quantize_trt(calibrated, "fine_cnn"), "coarse_cnn": quantize_trt(calibrated, "coarse_cnn")}
    seen = []
    choice = choose_float_layers(calibrated, made, 1.01, samples=4, progress=seen.append)
    assert not choice.met and choice.target == 1.01
    assert any("sensitivity of fine_cnn" in s for s in seen) and any("candidates" in s for s in seen)
    # every candidate was streamed; at most half of each role's layers may be float (2 each here: one)
    assert [c["float_layers"] for c in choice.candidates][0] == 0 and len(choice.candidates) >= 2
    assert all(c["float_layers"] <= 2 for c in choice.candidates)
    for role, layers in choice.float_layers.items():
        graph = next(a for a in choice.artifacts[role] if a.kind == "onnx")
        assert graph.info["quantization"]["excluded"] == layers
        assert all("most sensitive layer" in why and "< 1.0100" in why for why in layers.values())
    best = max(c["top1_agreement"] for c in choice.candidates)
    assert choice.agreement == best


def test_ladder_and_limit():
    assert _ladder(10) == [1, 2, 4, 8, 10] and _ladder(1) == [1] and _ladder(0) == []
    ranked = [("a", 1), ("b", 2), ("a", 3), ("a", 4)]
    assert _within(ranked, {"a": 2, "b": 1}) == ranked[:3]


def test_feeds_without_their_streams_are_refused(calibrated, tmp_path):
    root = fixture_bundles.copy_bundle(fixture_bundles.LITEEVAL["mixed"], tmp_path / "b")
    with pytest.raises(CalibrationError, match="do not say which streams"):
        calibration_streams(load_bundle(root), ["fine_cnn"])
    assert calibration_streams(calibrated, ["fine_cnn"]) == RECIPE["streams"]
