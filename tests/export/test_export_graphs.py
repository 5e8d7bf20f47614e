"""The four LiteEval role graphs: contract names and shapes, plain ops, parity torch vs ONNX Runtime.

The step graphs are exported from the wrappers alone (head of the brief: Dc=16, Df=32, Pc=16,
F=512 of resnet18 — the ResNet is never built or exported here).
"""
from __future__ import annotations

import copy

import numpy as np
import onnx
import pytest
import torch
from tests.helpers.export_helpers import STEPS, random_features, small_model

from edgevid.backends.ort import OrtSession
from edgevid.export.liteeval import liteeval_roles
from edgevid.export.onnx import export_onnx, op_counts
from edgevid.models.liteeval import LiteEval, LiteEvalConfig, create_liteeval
from edgevid.verify import verify_liteeval_steps

STEP_OPS = {"MatMul", "Gemm", "Add", "Sigmoid", "Tanh", "Mul", "Slice", "Concat",  # the recurrence (docs/models.md §1.4)
            "Relu",                                                              # folded projection
            "ReduceSum", "Sqrt", "Max", "Div"}                                   # L2 norm


def contract(cfg):
    """docs/models.md §2.8, batch 1."""
    dc, df, pc, f, c = cfg.coarse_hidden, cfg.fine_hidden, cfg.coarse_proj, cfg.fine_feat, cfg.num_classes
    return {
        "coarse_cnn": ([("frame", (1, 3, 112, 112))], [("feat", (1, 1280))]),
        "fine_cnn": ([("frame", (1, 3, 224, 224))], [("feat", (1, f))]),
        "coarse_step": ([("feat_c", (1, 1280)), ("h_c_in", (1, dc)), ("c_c_in", (1, dc)), ("h_f_in", (1, df)),
                         ("c_f_in", (1, df))],
                        [("v_c", (1, pc)), ("h_c_out", (1, dc)), ("c_c_out", (1, dc)), ("gate_logits", (1, 2)),
                         ("h_f_sync", (1, df)), ("c_f_sync", (1, df)), ("logits_sync", (1, c))]),
        "fine_step": ([("feat_f", (1, f)), ("v_c", (1, pc)), ("h_f_in", (1, df)), ("c_f_in", (1, df))],
                      [("h_f_out", (1, df)), ("c_f_out", (1, df)), ("logits", (1, c))]),
    }


def _onnx_io(path):
    m = onnx.load(str(path))
    inits = {t.name for t in m.graph.initializer}

    def io(values):
        return [(v.name, tuple(d.dim_value for d in v.type.tensor_type.shape.dim)) for v in values if v.name not in inits]
    return io(m.graph.input), io(m.graph.output)


def test_every_role_graph_has_exactly_the_contract_io(model, bundle):
    want = contract(model.config)
    assert set(bundle.graphs) == set(want)
    for role, (inputs, outputs) in want.items():
        g = bundle.graph(role)
        assert [(t.name, t.shape, t.dtype) for t in g.inputs] == [(n, s, "float32") for n, s in inputs], role
        assert [(t.name, t.shape, t.dtype) for t in g.outputs] == [(n, s, "float32") for n, s in outputs], role
        assert _onnx_io(bundle.graph_path(role)) == (inputs, outputs), role  # the file itself, not just the manifest


def test_step_graphs_are_plain_ops(bundle):
    for role in ("coarse_step", "fine_step"):
        ops = op_counts(onnx.load(str(bundle.graph_path(role))))
        assert set(ops) <= STEP_OPS, (role, ops)
        assert ops.get("Gemm", 0) + ops.get("MatMul", 0) >= 3  # projection, LSTM step, classifier (+ gate)
        assert "BatchNormalization" not in ops


def _step_sessions(model, tmp_path):
    """Export coarse_step and fine_step from the wrappers (no CNNs) and open them on ONNX Runtime."""
    sessions = {}
    for role, rg in liteeval_roles(model, ["coarse_step", "fine_step"]).items():
        export_onnx(rg.module, rg.example_inputs, rg.output_names, tmp_path / (role + ".onnx"), role=role)
        sessions[role] = OrtSession(tmp_path / (role + ".onnx"), threads=1).activate()
    return sessions


def test_step_parity_with_teacher_forced_gates(tmp_path):
    """Per step, both sides get the same torch state (driven by the torch gate decisions)."""
    model = small_model(seed=1)
    head = model.head.eval()
    sessions = _step_sessions(model, tmp_path)
    fc, ff = random_features(STEPS, seed=11)
    n = lambda t: t.numpy()  # noqa: E731
    state = head.init_state(1)
    worst = {}
    decisions = []
    with torch.no_grad():
        for t in range(STEPS):
            v_c, (h_c, c_c), b, (h_s, c_s) = head.coarse_step(torch.from_numpy(fc[t:t + 1]), state)
            ref = {"v_c": v_c, "h_c_out": h_c, "c_c_out": c_c, "gate_logits": b, "h_f_sync": h_s, "c_f_sync": c_s,
                   "logits_sync": head.classifier(h_s)}
            got = sessions["coarse_step"].infer({"feat_c": fc[t:t + 1], "h_c_in": n(state[0]), "c_c_in": n(state[1]),
                                                 "h_f_in": n(state[2]), "c_f_in": n(state[3])})
            h_n, c_n = head.fine_step(torch.from_numpy(ff[t:t + 1]), v_c, state[2], state[3])
            ref_f = {"h_f_out": h_n, "c_f_out": c_n, "logits": head.classifier(h_n)}
            got_f = sessions["fine_step"].infer({"feat_f": ff[t:t + 1], "v_c": n(v_c), "h_f_in": n(state[2]),
                                                 "c_f_in": n(state[3])})
            for k, v in list(ref.items()) + list(ref_f.items()):
                out = got[k] if k in got else got_f[k]
                worst[k] = max(worst.get(k, 0.0), float(np.abs(out - n(v)).max()))
            fine = bool(b[0, 0] >= b[0, 1])
            decisions.append(fine)
            state = (h_c, c_c, h_n, c_n) if fine else (h_c, c_c, h_s, c_s)
    assert 0.1 < np.mean(decisions) < 0.9  # both branches exercised
    assert set(worst) == {"v_c", "h_c_out", "c_c_out", "gate_logits", "h_f_sync", "c_f_sync", "logits_sync",
                          "h_f_out", "c_f_out", "logits"}
    assert max(worst.values()) < 1e-5, worst


def test_free_running_gate_agreement(model, bundle, features):
    """≥ 300 free-running steps: the ONNX loop makes exactly the torch decisions (LiteEvalHead, eval)."""
    fc, ff = features
    report = verify_liteeval_steps(model, bundle, fc, ff, threads=1)
    s = report["stream"]
    assert s["steps"] >= 300
    assert 0.1 < s["fine_rate_torch"] < 0.9, s  # the gate switches: both branches occur
    # near-ties exist (margins down to ~1e-3) but ONNX Runtime differs from torch by ~1e-7, far below them
    assert s["gate_agreement"] == 1.0 and s["first_disagreement"] is None, s
    assert s["fine_rate_delta"] == 0.0
    assert s["logits_max_abs"] < 1e-4
    assert report["graphs"]["coarse_step"]["max_abs"] < 1e-5 and report["graphs"]["fine_step"]["max_abs"] < 1e-5
    assert report["ok"], report


def test_free_running_reports_disagreement_without_raising(model, bundle, features):
    """A torch head that differs from the graphs: reported (ok False, first step), never raised."""
    other = copy.deepcopy(model)
    with torch.no_grad():
        other.head.gate.bias[0] += 0.3
    fc, ff = features
    report = verify_liteeval_steps(other, bundle, fc, ff, threads=1)
    assert not report["ok"]
    assert report["stream"]["gate_agreement"] < 1.0 and report["stream"]["first_disagreement"] is not None
    assert report["graphs"]["coarse_step"]["outputs"]["gate_logits"]["max_abs"] > 0.29


def test_equal_coarse_and_fine_hidden(tmp_path):
    """D^c == D^f: the sync adopts the whole coarse state; outputs keep their names."""
    model = small_model(seed=2, coarse_hidden=32, fine_hidden=32)
    rg = liteeval_roles(model, ["coarse_step"])["coarse_step"]
    inputs, outputs = export_onnx(rg.module, rg.example_inputs, rg.output_names, tmp_path / "cs.onnx")
    assert [t.name for t in outputs] == list(rg.output_names)
    got = OrtSession(tmp_path / "cs.onnx").activate().infer({k: v.numpy() for k, v in rg.example_inputs.items()})
    np.testing.assert_array_equal(got["h_f_sync"], got["h_c_out"])
    with torch.no_grad():
        ex = list(rg.example_inputs.values())
        ref = model.head.coarse_step(ex[0], tuple(ex[1:]))
    np.testing.assert_allclose(got["h_f_sync"], ref[3][0].numpy(), atol=1e-6)


def test_step_gmacs_match_the_fcvid_arithmetic():
    """docs/models.md §2.7: FCVID config coarse_step ≈ 3.25 M, fine_step ≈ 42.4 M MACs (wrappers, no CNNs built)."""
    cfg = LiteEvalConfig(num_classes=239, fine_arch="resnet101")  # Pc=512, Dc=512, Df=2048, F=2048
    model = LiteEval(cfg, torch.nn.Identity(), torch.nn.Identity())
    roles = liteeval_roles(model, ["coarse_step", "fine_step"])
    c = 1280 * 512 + 4 * 512 * (512 + 512) + (512 + 2 * 2048) * 2 + 2048 * 239
    f = 2048 * 2048 + 4 * 2048 * (2048 + 512 + 2048) + 2048 * 239
    assert roles["coarse_step"].gmacs() == pytest.approx(c / 1e9) == pytest.approx(3.2512e-3, rel=1e-4)
    assert roles["fine_step"].gmacs() == pytest.approx(f / 1e9) == pytest.approx(42.4325e-3, rel=1e-4)


def test_cnn_gmacs_match_the_torch_backbones():
    """docs/models.md §2.1: MobileNetV2@112 ≈ 0.081, ResNet-18@224 ≈ 1.814, ResNet-101@224 ≈ 7.80 (counted, not exported)."""
    m18 = create_liteeval(LiteEvalConfig(num_classes=2, fine_arch="resnet18", coarse_hidden=16, fine_hidden=16,
                                         coarse_proj=16))
    roles = liteeval_roles(m18, ["coarse_cnn", "fine_cnn"])
    assert roles["coarse_cnn"].gmacs() == pytest.approx(0.0809, abs=5e-4)
    assert roles["fine_cnn"].gmacs() == pytest.approx(1.8136, abs=5e-4)
    m101 = create_liteeval(LiteEvalConfig(num_classes=2, fine_arch="resnet101", coarse_hidden=16, fine_hidden=16,
                                          coarse_proj=16))
    assert liteeval_roles(m101, ["fine_cnn"])["fine_cnn"].gmacs() == pytest.approx(7.80, abs=0.01)
