"""Fixtures: tiny LiteEval bundles (one per forced gate mode, exported once per session) and a test video."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # tiny_liteeval helper
if str(HERE.parents[1]) not in sys.path:
    sys.path.insert(0, str(HERE.parents[1]))  # the repository, when pytest is run without installing edgevid

import tiny_liteeval as tiny  # noqa: E402


@pytest.fixture(scope="session")
def bundle_root(tmp_path_factory):
    """gate mode -> bundle folder; exported on first use."""
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("cv2")
    base = tmp_path_factory.mktemp("bundles")
    made = {}

    def get(gate: str) -> Path:
        if gate not in made:
            first = next(iter(made.values()), None)
            tiny.make_bundle(base / gate, gate, base=first)
            made[gate] = base / gate
        return made[gate]

    return get


@pytest.fixture
def make_bundle(bundle_root):
    """make_bundle(gate, **policy) -> a freshly loaded Bundle whose policy is updated in memory."""
    from edgevid.bundle import load_bundle

    def make(gate: str = "mixed", **policy):
        bundle = load_bundle(bundle_root(gate))
        bundle.policy.update(policy)
        return bundle

    return make


@pytest.fixture(scope="session")
def video(tmp_path_factory):
    pytest.importorskip("cv2")
    return tiny.write_video(tmp_path_factory.mktemp("video") / "clip.avi", frames=24)
