"""Opt-in measurement: parity of the FCVID-size LiteEval (MobileNetV2@112 + ResNet-101@224, Dc=512,
Df=2048, Pc=512, 239 classes). About 2 minutes on 2 cores, so it runs only when asked:

    EDGEVID_PARITY_FCVID=1 python -m pytest -q -s tests/export/test_export_parity_fcvid.py
"""
from __future__ import annotations

import os

import onnx
import pytest
from tests.helpers.export_helpers import bgr_frames, trained_like_liteeval

from edgevid.export import export_bundle
from edgevid.export.onnx import op_counts
from edgevid.models.liteeval import LiteEvalConfig
from edgevid.verify import describe_report, verify_liteeval


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("EDGEVID_PARITY_FCVID"), reason="opt-in measurement: set EDGEVID_PARITY_FCVID=1")
def test_fcvid_size_parity(tmp_path):
    cfg = LiteEvalConfig(num_classes=239, labels=["c%d" % i for i in range(239)], fine_arch="resnet101")
    frames = bgr_frames(6, seed=3)
    model, _, _ = trained_like_liteeval(cfg, frames)
    bundle = export_bundle(model, tmp_path / "fcvid", labels=None)
    for role, g in bundle.graphs.items():
        print(role, "GMACs %.6g" % g.gmacs, op_counts(onnx.load(str(bundle.graph_path(role)))))
    assert bundle.graph("coarse_step").gmacs == pytest.approx(3.2512e-3, rel=1e-4)
    assert bundle.graph("fine_step").gmacs == pytest.approx(42.4325e-3, rel=1e-4)
    assert bundle.graph("fine_cnn").gmacs == pytest.approx(7.80, abs=0.01)
    report = verify_liteeval(model, bundle, frames)
    print(describe_report(report))
    print(report["stream"])
    assert report["graphs"]["coarse_cnn"]["max_abs"] < 1e-3 and report["graphs"]["fine_cnn"]["max_abs"] < 1e-3
    assert report["stream"]["gate_agreement"] == 1.0 and report["ok"], describe_report(report)
