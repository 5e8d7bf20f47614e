"""verify_liteeval: parity torch vs ONNX Runtime on recorded frames, reported (never raised)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from edgevid.errors import ExportError
from edgevid.export import export_bundle
from edgevid.export.onnx import op_counts
from edgevid.models.liteeval import LiteEvalConfig
from edgevid.preprocess import Preprocessor
from edgevid.verify import describe_report, verify_liteeval
from tests.helpers.export_helpers import bgr_frames, trained_like_liteeval
from tests.helpers.numpy_session import session_for

ROOT = Path(__file__).resolve().parents[2]


def test_verify_on_bgr_frames(model, bundle):
    frames = bgr_frames(6)
    report = verify_liteeval(model, bundle, frames, threads=1)
    assert report["ok"], describe_report(report)
    assert report["frames"] == 6 and report["steps"] == 300
    for role in ("coarse_cnn", "fine_cnn", "coarse_step", "fine_step"):
        g = report["graphs"][role]
        assert g["ok"] and g["max_abs"] < 1e-5 and g["min_cosine"] > 0.99999, (role, g)
    assert report["graphs"]["coarse_step"]["calls"] == 300
    assert report["stream"]["gate_agreement"] == 1.0
    assert "parity OK" in describe_report(report)


def drifting(real, name, by):
    """A numpy session that runs ``real`` (an active session) and adds ``by`` to its output ``name``."""
    def infer(feeds):
        out = {k: np.array(v) for k, v in real.infer(feeds).items()}
        out[name] = out[name] + np.float32(by)
        return out
    return infer


def test_verify_takes_sessions_and_reports_what_ran(model, bundle):
    """sessions= as StreamRuntime takes it: a factory here, with fine_step a numpy session whose logits drift;
    verify compares what it is given (that graph fails, the others pass) and says which backend ran what."""
    from edgevid.backends import session_factory

    ort = session_factory("ort", options={"*": {"threads": 1}})
    real = ort(bundle, "fine_step").activate()
    try:
        def factory(b, role):
            return session_for(b, "fine_step", drifting(real, "logits", 1e-2)) if role == "fine_step" else ort(b, role)

        report = verify_liteeval(model, bundle, bgr_frames(4), steps=60, sessions=factory)
    finally:
        real.deactivate()
    assert not report["ok"] and not report["graphs"]["fine_step"]["ok"], describe_report(report)
    assert report["graphs"]["fine_step"]["outputs"]["logits"]["max_abs"] == pytest.approx(1e-2, rel=1e-3)
    assert all(report["graphs"][r]["ok"] for r in ("coarse_cnn", "fine_cnn", "coarse_step"))
    assert report["backend"] == "numpy+ort" and report["sessions"]["fine_step"]["backend"] == "numpy"
    assert "MISMATCH" in describe_report(report)


def test_verify_leaves_sessions_it_did_not_activate_active(model, bundle):
    from edgevid.backends import session_factory

    ort = session_factory("ort", options={"*": {"threads": 1}})
    sessions = {role: ort(bundle, role) for role in ("coarse_cnn", "fine_cnn", "coarse_step", "fine_step")}
    sessions["fine_cnn"].activate()  # the caller's: stays active; the others verify opens and closes
    report = verify_liteeval(model, bundle, bgr_frames(2), steps=20, sessions=sessions)
    assert report["ok"], describe_report(report)
    assert sessions["fine_cnn"].active and not any(s.active for r, s in sessions.items() if r != "fine_cnn")
    sessions["fine_cnn"].deactivate()


def test_verify_on_preprocessed_arrays_gives_the_same_numbers(model, bundle):
    frames = bgr_frames(4, seed=1)
    pre = Preprocessor(bundle.preprocess)
    f224 = np.concatenate([pre(f)[224].copy() for f in frames])
    f112 = np.concatenate([pre(f)[112].copy() for f in frames])
    a = verify_liteeval(model, bundle, frames, steps=50, threads=1)
    b = verify_liteeval(model, bundle.root, torch.from_numpy(f224), f112, steps=50, threads=1)
    c = verify_liteeval(model, bundle, np.stack(frames), steps=50, threads=1)  # one [T,H,W,3] uint8 array
    assert a["graphs"] == b["graphs"] == c["graphs"] and a["stream"] == b["stream"] == c["stream"]
    with pytest.raises(ExportError, match="without frames_112"):
        verify_liteeval(model, bundle, f224)
    with pytest.raises(ExportError, match="frames of shapes"):
        verify_liteeval(model, bundle, f224, f224)


def test_verify_cannot_run_without_a_bundle(model, tmp_path):
    with pytest.raises(ExportError, match="cannot verify the bundle"):
        verify_liteeval(model, tmp_path / "nothing", bgr_frames(1))


def test_verify_module_imports_without_torch():
    code = ("import sys\n"
            "for m in ('torch', 'torchvision', 'onnx', 'onnxsim', 'cv2'): sys.modules[m] = None\n"
            "import edgevid.verify as v\n"
            "assert 'torch' not in [k for k, m in sys.modules.items() if m is not None]\n"
            "print(v.verify_liteeval.__name__)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=str(ROOT), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "verify_liteeval"


@pytest.mark.slow
def test_full_bundle_with_mobilenet_and_resnet18(tmp_path):
    """Both real backbones exported (the only CNN exports in the suite); CNN parity on preprocessed frames."""
    cfg = LiteEvalConfig(num_classes=5, labels=list("abcde"), fine_arch="resnet18", coarse_proj=16,
                         coarse_hidden=16, fine_hidden=32)
    frames = bgr_frames(8, seed=3)
    model, _, _ = trained_like_liteeval(cfg, frames)

    bundle = export_bundle(model, tmp_path / "full", labels=None)
    assert bundle.graph("coarse_cnn").gmacs == pytest.approx(0.0809, abs=5e-4)
    assert bundle.graph("fine_cnn").gmacs == pytest.approx(1.8136, abs=5e-4)
    for role in ("coarse_cnn", "fine_cnn"):
        ops = op_counts(onnx.load(str(bundle.graph_path(role))))
        assert "BatchNormalization" not in ops and set(ops) <= {"Conv", "Clip", "Relu", "Add", "MaxPool", "ReduceMean",
                                                                "Constant", "GlobalAveragePool", "Flatten"}, ops

    report = verify_liteeval(model, bundle, frames, threads=1)
    print(describe_report(report))
    for role in ("coarse_cnn", "fine_cnn"):
        g = report["graphs"][role]
        assert g["ref_max_abs"] > 0.1, g  # real activations, not a vanishing network
        assert g["max_abs"] < 1e-3 and g["min_cosine"] > 0.9999, (role, g)
    for role in ("coarse_step", "fine_step"):
        assert report["graphs"][role]["max_abs"] < 1e-4, report["graphs"][role]
    s = report["stream"]
    assert 0.0 < s["fine_rate_torch"] < 1.0, s
    # CNN features differ by ~1e-5 between torch and ONNX Runtime, far below the smallest gate margin of
    # this stream, so every decision must agree (a miss would be acceptable only on a near-tie)
    assert s["min_gate_margin"] > 1e-3, s
    assert s["gate_agreement"] == 1.0 and s["fine_rate_delta"] == 0.0 and s["logits_max_abs"] < 1e-4, s
    assert report["ok"], describe_report(report)

