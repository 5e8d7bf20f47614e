"""Fixtures of the export tests. Without the export extra (torch, onnx, onnxsim, onnxruntime) they are skipped."""
from __future__ import annotations

import importlib.util

import pytest

MISSING = [m for m in ("torch", "torchvision", "onnx", "onnxsim", "onnxruntime") if importlib.util.find_spec(m) is None]
collect_ignore_glob = ["test_*.py"] if MISSING else []


@pytest.fixture(scope="session")
def model():
    """A small LiteEval (tiny CNNs, head of the brief) with trained-like BN and a switching gate.

    Shared by the session: tests must not modify it (deep-copy first).
    """
    from export_helpers import small_model

    return small_model()


@pytest.fixture(scope="session")
def bundle(model, tmp_path_factory):
    from edgevid.export import export_bundle

    out = tmp_path_factory.mktemp("bundles") / "small"
    return export_bundle(model, out, labels=model.config.labels, checkpoint_info={"path": "ckpt.pt", "epoch": 3})


@pytest.fixture(scope="session")
def features(model):
    from export_helpers import STEPS, random_features

    return random_features(STEPS, model.config.coarse_feat, model.config.fine_feat, seed=7)
