"""edgevid quantize end to end on a tiny bundle: artifacts per allowed role and form, kept-higher roles recorded
with their reason, the report in the bundle, and edgevid run --precision using what was made."""
from __future__ import annotations

import json
import shutil

import pytest

from edgevid.bundle import load_bundle
from edgevid.errors import ConfigError
from tests.helpers import bundles as fixture_bundles

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytest.importorskip("cv2")

STREAM = "synthetic:seed=5,segments=3,frames=16,fps=10"
RECIPE = {"name": "t", "streams": ["synthetic:seed=3,segments=3,frames=16,fps=10"], "min_samples": 4}


@pytest.fixture
def calibrated(tmp_path):
    from edgevid.quant import calibrate

    root = tmp_path / "b"
    shutil.copytree(str(fixture_bundles.FIXTURES / fixture_bundles.PRERNN["lstm"]), str(root))
    calibrate(root, RECIPE)
    return root


def test_int8_for_the_allowed_roles_the_step_kept_with_its_reason(calibrated):
    from edgevid.quant import quantize

    report = quantize(load_bundle(calibrated), "int8", streams=[STREAM])
    bundle = load_bundle(calibrated)
    files = {a.file for a in bundle.graph("backbone").artifacts}
    assert {"backbone.int8.trt.onnx", "backbone.int8.cpu.onnx", "backbone.calib.cache"} <= files
    assert not bundle.graph("step").find("onnx", "int8")
    record = bundle.meta["precision"]["int8"]
    assert record["roles"]["step"]["precision"] == "fp32" and "never INT8" in record["roles"]["step"]["kept"]
    assert record["roles"]["backbone"]["precision"] == "int8" and report["kept"] == {"step": record["roles"]["step"]["kept"]}
    assert set(report["plans"]) == {"int8-trt", "int8-cpu"}
    for name, entry in report["plans"].items():
        assert entry["stream"]["sessions"]["backbone"]["precision"] == "int8"
        assert entry["stream"]["sessions"]["backbone"]["artifact"] == "backbone.int8.%s.onnx" % name[-3:]
        assert entry["roles"]["backbone"]["outputs"]["v"]["min_cosine"] > 0.99
    reports = {a.file for a in bundle.graph("backbone").find("report")}
    assert reports == {"quantization/int8.json", "quantization/int8.md"}
    assert json.loads((calibrated / "quantization" / "int8.json").read_text())["precision"] == "int8"


def test_naming_a_role_the_rules_keep_higher_needs_force(calibrated):
    from edgevid.quant import quantize

    with pytest.raises(ConfigError, match="role step of a prernn bundle is kept off int8.*--force"):
        quantize(load_bundle(calibrated), "int8", roles=["step"], streams=[STREAM])


def test_the_cli_makes_fp16_and_run_uses_it(calibrated, edgevid_cli, capsys):
    assert edgevid_cli(["quantize", str(calibrated), "--precision", "fp16", "--streams", STREAM]) == 0
    out = capsys.readouterr().out
    assert "| fp16 |" in out and "per role" in out
    stats = calibrated.parent / "stats.json"
    assert edgevid_cli(["run", str(calibrated), "--source", STREAM, "--precision", "fp16", "--stats", str(stats)]) == 0
    sessions = json.loads(stats.read_text())["sessions"]
    assert sessions["backbone"]["artifact"] == "backbone.fp16.onnx" and sessions["step"]["precision"] == "fp16"


def test_the_quick_demo_streams_at_int8_where_the_rules_and_the_measurement_allow(tmp_path):
    pytest.importorskip("torch")
    from edgevid.demo import run_demo

    report = run_demo(tmp_path / "demo", model="prernn", quick=True, precision="int8")
    p = report["precision"]
    assert p["asked"] == "int8" and set(p["plans"]) == {"int8-trt", "int8-cpu"}
    assert "never INT8" in p["kept"]["step"] and report["sessions"]["step"]["precision"] == "fp32"
    reduced = p["plans"]["int8-cpu"]["roles"]
    # what streamed is what quantize made or kept: the backbone at INT8 (CPU form) or, measured short, FP32
    want = ("int8", "backbone.int8.cpu.onnx") if reduced == ["backbone"] else ("fp32", "backbone.onnx")
    assert (report["sessions"]["backbone"]["precision"], report["sessions"]["backbone"]["artifact"]) == want
    assert "quantize" in report["timings_s"]


def test_slowfast_int8_is_opt_in_and_bad_input_changes_nothing(tmp_path, edgevid_cli, capsys):
    from edgevid.bundle import MANIFEST
    from edgevid.errors import CalibrationError, ManifestError
    from edgevid.quant import calibrate, quantize

    root = tmp_path / "clip"
    shutil.copytree(str(fixture_bundles.FIXTURES / fixture_bundles.CLIP), str(root))
    manifest = (root / MANIFEST).read_bytes()
    # no feeds yet: refused, with the command that makes them, and the bundle is as it was
    assert edgevid_cli(["quantize", str(root), "--precision", "fp16", "--streams", STREAM]) == CalibrationError.exit_code
    assert "edgevid calibrate" in capsys.readouterr().err and (root / MANIFEST).read_bytes() == manifest
    calibrate(root, dict(RECIPE, min_samples=2))
    manifest = (root / MANIFEST).read_bytes()
    assert edgevid_cli(["quantize", str(root), "--precision", "int8", "--role", "nosuch", "--streams", STREAM]) == \
        ManifestError.exit_code
    assert "has no graph with role 'nosuch'" in capsys.readouterr().err and (root / MANIFEST).read_bytes() == manifest
    report = quantize(load_bundle(root), "int8", streams=[STREAM])
    assert "opt-in" in report["kept"]["clip"] and not load_bundle(root).graph("clip").find("onnx", "int8")
    named = quantize(load_bundle(root), "int8", roles=["clip"], target="cpu", streams=[STREAM])
    assert not named["kept"].get("clip") or named["kept"]["clip"].startswith("measured")


def test_too_few_samples_for_the_method_are_refused_before_anything_is_made(tmp_path):
    from edgevid.bundle import MANIFEST
    from edgevid.errors import CalibrationError
    from edgevid.quant import calibrate, quantize

    root = tmp_path / "b"
    shutil.copytree(str(fixture_bundles.FIXTURES / fixture_bundles.PRERNN["gru"]), str(root))
    calibrate(root, dict(RECIPE, max_frames=12))
    manifest = (root / MANIFEST).read_bytes()
    with pytest.raises(CalibrationError, match="backbone has 12 calibration samples; entropy calibration needs at least 32"):
        quantize(load_bundle(root), "int8", target="trt", streams=[STREAM])
    assert (root / MANIFEST).read_bytes() == manifest
    quantize(load_bundle(root), "int8", target="cpu", streams=[STREAM])  # minmax: 12 will do


def test_layers_kept_float_are_recorded_and_reported(calibrated, monkeypatch):
    """An unreachable agreement target makes the search keep layers float: bundle.json and the report say which."""
    from edgevid.quant import quantize
    from edgevid.quant import report as report_module

    monkeypatch.setitem(report_module.TARGETS["int8"], "top1_agreement", 1.01)
    report = quantize(load_bundle(calibrated), "int8", target="trt", streams=[STREAM])
    chosen = report["float_layers"]
    assert not chosen["met"] and chosen["candidates"][0]["float_layers"] == 0
    record = load_bundle(calibrated).meta["precision"]["int8"]["roles"]["backbone"]
    assert record.get("float_layers", []) == sorted(chosen["float_layers"].get("backbone", {}))
    text = (calibrated / "quantization" / "int8.md").read_text()
    assert "Layers kept float" in text and "Roles kept FP32" in text
