"""``edgevid verify BUNDLE --backend B`` without a checkpoint: the backend's run against ONNX Runtime FP32 on one
stream (verify/backends.py), with no torch. TensorRT is absent here, so the comparison itself runs with a second
registry entry for ONNX Runtime's session class (real sessions, real streams); the TensorRT run is
tests/backends/test_cuda_gpu.py's, on a GPU."""
from __future__ import annotations

import pytest

from edgevid.bundle import load_bundle
from edgevid.errors import ConfigError, DependencyError
from tests.helpers import bundles as fixture_bundles

pytest.importorskip("onnxruntime")
pytest.importorskip("cv2")

SOURCE = "synthetic:seed=4,segments=2,frames=12,fps=10"


def test_another_backend_against_onnx_runtime(monkeypatch):
    from edgevid.backends import registry
    from edgevid.verify import describe_backend_report, verify_backend

    monkeypatch.setitem(registry.BACKENDS, "ort2", registry.BACKENDS["ort"])
    bundle = load_bundle(fixture_bundles.committed(fixture_bundles.LITEEVAL["mixed"]))
    report = verify_backend(bundle, "ort2", SOURCE, frames=15)
    entry = report["plans"]["ort2-default"]
    assert report["backend"] == "ort2" and entry["backend"] == "ort2" and report["fp32"]["frames"] == 15
    # every role is compared on the reference's own feeds, FP32 too, since the backend differs
    assert set(entry["roles"]) == set(bundle.rules.roles)
    assert entry["stream"]["top1_agreement"] == 1.0 and entry["stream"]["gate_agreement"] == 1.0
    assert entry["targets"]["top1_agreement"]["target"] == 0.995 and report["ok"]
    text, ok = describe_backend_report(report)
    assert ok and text.startswith("# ort2 against ort") and "all targets met" in text


def test_onnx_runtime_against_itself_is_refused(edgevid_cli, capsys):
    root = fixture_bundles.committed(fixture_bundles.LITEEVAL["mixed"])
    code = edgevid_cli(["verify", str(root), "--backend", "ort", "--source", SOURCE])
    err = capsys.readouterr().err
    assert code == ConfigError.exit_code and "--checkpoint" in err and "Traceback" not in err


def test_trt_without_tensorrt_says_where_it_comes_from(edgevid_cli, capsys):
    try:
        import tensorrt  # noqa: F401
        pytest.skip("TensorRT is installed here")
    except ImportError:
        pass
    root = fixture_bundles.committed(fixture_bundles.CLIP)
    code = edgevid_cli(["verify", str(root), "--backend", "trt"])
    err = capsys.readouterr().err
    assert code == DependencyError.exit_code and "TensorRT" in err and "Traceback" not in err


def test_precision_needs_the_backend_comparison(edgevid_cli, capsys, tmp_path):
    root = fixture_bundles.committed(fixture_bundles.CLIP)
    code = edgevid_cli(["verify", str(root), "--checkpoint", str(tmp_path / "x.pt"), "--precision", "fp16"])
    assert code == ConfigError.exit_code and "--precision applies without --checkpoint" in capsys.readouterr().err


def test_parity_with_pytorch_without_torch_names_the_extra(edgevid_cli, capsys, tmp_path):
    try:
        import torch  # noqa: F401
        pytest.skip("torch is installed here")
    except ImportError:
        pass
    root = fixture_bundles.committed(fixture_bundles.CLIP)
    code = edgevid_cli(["verify", str(root), "--checkpoint", str(tmp_path / "x.pt")])
    err = capsys.readouterr().err
    assert code == DependencyError.exit_code and "torch" in err and "Traceback" not in err
