"""CPU-form INT8 (u8 activations, s8 weights) from calibration feeds; the per-role precision plan of a run;
``edgevid run --precision int8``. Tiny committed fixtures, no torch."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from edgevid.bundle import load_bundle
from edgevid.errors import CalibrationError, ConfigError, ManifestError
from edgevid.backends.registry import precision_plan
from tests.helpers import bundles as fixture_bundles

STREAM = "synthetic:seed=3,segments=3,frames=16,fps=10"
RECIPE = {"name": "t", "streams": [STREAM], "max_frames": 40, "min_samples": 4}


def copy(tmp_path, name):
    dst = tmp_path / name
    shutil.copytree(str(fixture_bundles.FIXTURES / name), str(dst))
    return dst


@pytest.fixture(scope="module")
def quantized(tmp_path_factory):
    """A LiteEval fixture, calibrated, with CPU INT8 graphs of both CNNs (made once for the module)."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    pytest.importorskip("cv2")
    from edgevid.quant import calibrate
    from edgevid.quant.cpu_int8 import quantize_cpu

    root = copy(tmp_path_factory.mktemp("q"), fixture_bundles.LITEEVAL["mixed"])
    calibrate(root, RECIPE)
    bundle = load_bundle(root)
    bundle.add_artifacts(quantize_cpu(bundle, "coarse_cnn") + quantize_cpu(bundle, "fine_cnn", fmt="qoperator"))
    return root


def test_cpu_int8_artifact_is_u8s8_and_agrees_with_fp32(quantized):
    import onnxruntime as ort

    from edgevid.quant import load_feeds

    bundle = load_bundle(quantized)
    art = bundle.graph("coarse_cnn").find("onnx", "int8")[0]
    q = art.info["quantization"]
    assert art.file == "coarse_cnn.int8.cpu.onnx" and art.info["target"] == "cpu"
    assert (q["activation_type"], q["weight_type"], q["format"], q["per_channel"]) == ("uint8", "int8", "qdq", True)
    cal = bundle.graph("coarse_cnn").find("calibration")[0]
    assert q["calibration"] == cal.file and q["data_sha256"] == cal.info["data_sha256"] and q["samples"] == 40
    assert q["ops"].get("QuantizeLinear", 0) > 0 and q["source_sha256"] == bundle.graph("coarse_cnn").sha256
    fine = bundle.graph("fine_cnn").find("onnx", "int8")[0].info["quantization"]
    assert fine["format"] == "qoperator" and any(op.startswith("QLinear") for op in fine["ops"])
    # the QDQ activations are u8: ORT's fast x86 form, not TensorRT's symmetric s8
    import onnx
    model = onnx.load(str(bundle.path(art)))
    zero_points = [i for i in model.graph.initializer if i.name.endswith("_zero_point")]
    assert any(z.data_type == onnx.TensorProto.UINT8 for z in zero_points)
    feeds = load_feeds(bundle, "coarse_cnn")["frame"][:8]
    ref = ort.InferenceSession(str(bundle.path(bundle.graph("coarse_cnn"))), providers=["CPUExecutionProvider"])
    got = ort.InferenceSession(str(bundle.path(art)), providers=["CPUExecutionProvider"])
    a = np.concatenate([ref.run(None, {"frame": x[None]})[0] for x in feeds]).astype(np.float64)
    b = np.concatenate([got.run(None, {"frame": x[None]})[0] for x in feeds]).astype(np.float64)
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert cos.min() > 0.98


def test_refuses_rule_kept_roles_and_missing_feeds(tmp_path, quantized):
    pytest.importorskip("onnxruntime")
    from edgevid.quant.cpu_int8 import quantize_cpu

    bundle = load_bundle(quantized)
    with pytest.raises(ConfigError) as e:
        quantize_cpu(bundle, "coarse_step")
    assert "--force" in str(e.value.fix) and e.value.why == bundle.rules.precision_rule("coarse_step").why
    forced = quantize_cpu(bundle, "coarse_step", force=True)[0]
    assert forced.info["quantization"]["forced"] is True and forced.precision == "int8"
    with pytest.raises(ConfigError):
        quantize_cpu(bundle, "coarse_cnn", method="random")
    fresh = load_bundle(copy(tmp_path, fixture_bundles.LITEEVAL["mixed"]))
    with pytest.raises(CalibrationError) as e:
        quantize_cpu(fresh, "fine_cnn")
    assert "edgevid calibrate" in str(e.value.fix)


def test_precision_plan_keeps_the_steps_fp32_and_wants_int8_graphs(quantized, tmp_path):
    bundle = load_bundle(quantized)
    assert precision_plan(bundle, None) == precision_plan(bundle, "fp32") == {r: "fp32" for r in bundle.rules.roles}
    plan = precision_plan(bundle, "int8")
    assert plan == {"coarse_cnn": "int8", "fine_cnn": "int8", "coarse_step": "fp32", "fine_step": "fp32"}
    with pytest.raises(ConfigError):
        precision_plan(bundle, "int4")
    with pytest.raises(ManifestError) as e:
        precision_plan(load_bundle(copy(tmp_path, fixture_bundles.PRERNN["lstm"])), "int8")
    assert "backbone" in e.value.what and "quantize" in e.value.fix
    with pytest.raises(ManifestError):  # fp16 is allowed for every role, but this bundle has no fp16 graphs
        precision_plan(bundle, "fp16")


def test_edgevid_run_precision_int8(quantized, tmp_path, edgevid_cli, capsys):
    stats = tmp_path / "stats.json"
    assert edgevid_cli(["run", str(quantized), "--source", STREAM, "--precision", "int8", "--max-frames", "12",
                        "--sequential", "--stats", str(stats), "-q"]) == 0
    sessions = json.loads(stats.read_text())["sessions"]
    assert sessions["coarse_cnn"]["precision"] == sessions["fine_cnn"]["precision"] == "int8"
    assert sessions["fine_cnn"]["artifact"] == "fine_cnn.int8.cpu.onnx"
    assert sessions["coarse_step"]["precision"] == sessions["fine_step"]["precision"] == "fp32"
    capsys.readouterr()
    plain = copy(tmp_path, fixture_bundles.LITEEVAL["mixed"])
    assert edgevid_cli(["run", str(plain), "--source", STREAM, "--precision", "int8", "--max-frames", "2"]) == 4
    assert "quantize" in capsys.readouterr().err
