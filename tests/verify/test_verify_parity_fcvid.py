"""Parity of an FCVID-shaped LiteEval, small enough for every run (a few seconds on 2 cores).

The FCVID model (models.md §2.7: MobileNetV2@112 + ResNet-101@224, Pc = Dc = 512, Df = 2048, 239 classes)
keeps here what shapes its graphs: the coarse feature 1280 and fine feature 2048 of those backbones, 239
classes, Pc = Dc < Df (the sync copies h_c into the first Dc units of h_f), Pf < F; the widths are scaled
down (Pc = Dc = 128, Df = 256, Pf = 256) and the backbones are tiny CNNs with those output widths, so the
export stays small. The full-size GMACs are checked by counting, without exporting
(tests/export/test_export_graphs.py); real backbones are exported in test_verify_liteeval.py.
"""
from __future__ import annotations

import onnx
import pytest

from edgevid.export import export_bundle
from edgevid.export.onnx import op_counts
from edgevid.verify import describe_report, verify_liteeval
from tests.helpers.export_helpers import bgr_frames, make_gate_switch, small_model

STEPS = 120

FCVID_SHAPED = dict(num_classes=239, labels=["c%d" % i for i in range(239)], fine_arch="resnet101",
                    coarse_proj=128, coarse_hidden=128, fine_hidden=256, fine_proj=256)


def gate_switching_on(model, frames):
    """Tune the gate on the model's own features of ``frames`` cycled over STEPS (both branches occur)."""
    import numpy as np
    import torch

    from edgevid.preprocess import Preprocessor
    from edgevid.spec import PreprocessSpec

    pre = Preprocessor(PreprocessSpec(resize_short=256, crop=224, sizes=(224, 112)))  # export_bundle's default
    with torch.no_grad():
        fc = model.coarse_cnn(torch.from_numpy(np.concatenate([pre(f)[112].copy() for f in frames]))).numpy()
        ff = model.fine_cnn(torch.from_numpy(np.concatenate([pre(f)[224].copy() for f in frames]))).numpy()
    idx = np.arange(STEPS) % len(frames)
    return make_gate_switch(model.head, fc[idx], ff[idx])


def test_fcvid_shaped_parity(tmp_path, one_torch_thread):
    model = small_model(seed=1, **FCVID_SHAPED)
    cfg = model.config
    frames = bgr_frames(6, seed=3)
    assert 0.0 < gate_switching_on(model, frames) < 1.0
    assert (cfg.coarse_feat, cfg.fine_feat, cfg.num_classes) == (1280, 2048, 239)
    bundle = export_bundle(model, tmp_path / "fcvid", labels=None)
    c, f = cfg.coarse_proj, cfg.fine_hidden
    gate_in = cfg.coarse_proj + 2 * cfg.fine_hidden
    coarse = 1280 * c + 4 * cfg.coarse_hidden * (c + cfg.coarse_hidden) + gate_in * 2 + f * 239
    fine = 2048 * 256 + 4 * f * (256 + c + f) + f * 239
    assert bundle.graph("coarse_step").gmacs == pytest.approx(coarse / 1e9, rel=1e-3)
    assert bundle.graph("fine_step").gmacs == pytest.approx(fine / 1e9, rel=1e-3)
    for role in ("coarse_step", "fine_step"):
        ops = op_counts(onnx.load(str(bundle.graph_path(role))))
        assert "LSTM" not in ops and "Loop" not in ops, ops
    assert (bundle.preprocess.resize_short, bundle.preprocess.crop) == (256, 224)
    report = verify_liteeval(model, bundle, frames, steps=STEPS, threads=1)
    assert report["ok"], describe_report(report)
    stream = report["stream"]
    assert 0.0 < stream["fine_rate_torch"] < 1.0, stream  # both branches ran, so both were compared
    assert stream["gate_agreement"] == 1.0 and stream["logits_max_abs"] < 1e-4, stream
    for role in ("coarse_step", "fine_step"):
        assert report["graphs"][role]["max_abs"] < 1e-4, report["graphs"][role]
