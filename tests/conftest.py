"""Shared fixtures. Tests run on CPU; models are tiny; data is generated in the test or committed under
tests/fixtures (bundles of tiny models, so the runtime tests need no torch). Helpers: tests/helpers."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.helpers import bundles as fixture_bundles

# keep tests predictable on a 2-core machine: one BLAS/ORT thread per process unless a test says otherwise
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def quick_demo(tmp_path_factory):
    """``edgevid demo --quick`` run once per test session: (output folder, completed process)."""
    pytest.importorskip("torch")
    pytest.importorskip("cv2")
    out = tmp_path_factory.mktemp("demo") / "out"
    result = subprocess.run([sys.executable, "-m", "edgevid", "demo", "--quick", "--out", str(out)],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    return out, result


@pytest.fixture(scope="session")
def quick_slowfast_demo(tmp_path_factory):
    """``edgevid demo --model slowfast --quick`` run once per test session: (output folder, completed process)."""
    pytest.importorskip("torch")
    pytest.importorskip("cv2")
    out = tmp_path_factory.mktemp("sfdemo") / "out"
    result = subprocess.run([sys.executable, "-m", "edgevid", "demo", "--model", "slowfast", "--quick", "--out",
                             str(out)], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    return out, result


@pytest.fixture
def one_torch_thread():
    """Tiny models: one torch thread is faster and leaves the shared cores alone."""
    torch = pytest.importorskip("torch")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def _edgevid_logging_restored():
    """Undo what an in-process ``edgevid.cli.main`` call installs, after every test: its stderr handler would
    outlive the test's captured stream ("I/O operation on closed file") and, with propagation off, hide later
    tests' records from caplog; its SIGTERM handler is the process's."""
    import logging

    from edgevid.log import ROOT

    import signal

    root = logging.getLogger(ROOT)
    saved = (list(root.handlers), root.level, root.propagate)
    sigterm = signal.getsignal(signal.SIGTERM)  # cli.main's SIGTERM handler too
    yield
    root.handlers[:], root.level, root.propagate = saved[0], saved[1], saved[2]
    signal.signal(signal.SIGTERM, sigterm)


@pytest.fixture
def edgevid_cli():
    """``edgevid.cli.main`` for in-process CLI tests (the logging it installs is undone after each test)."""
    from edgevid.cli import main

    return main


# --- committed fixture bundles (tests/fixtures/bundles), one copy per session ---------------------------------
@pytest.fixture(scope="session")
def fixture_root(tmp_path_factory):
    """A session-wide copy of tests/fixtures/bundles: tests may load and edit bundles in memory, never on disk
    (a test that saves a bundle copies one into its own tmp_path with ``fixture_bundles.copy_bundle``)."""
    root = tmp_path_factory.mktemp("fixtures") / "bundles"
    shutil.copytree(str(fixture_bundles.FIXTURES), str(root))
    return root


@pytest.fixture(scope="session")
def bundle_root(fixture_root):
    """gate mode -> folder of the tiny LiteEval bundle whose gate is forced that way (tiny_liteeval)."""
    pytest.importorskip("onnxruntime")
    return lambda gate: fixture_root / fixture_bundles.LITEEVAL[gate]


@pytest.fixture
def make_bundle(bundle_root):
    """make_bundle(gate, **policy) -> a freshly loaded LiteEval Bundle whose policy is updated in memory."""
    from edgevid.bundle import load_bundle

    def make(gate: str = "mixed", **policy):
        bundle = load_bundle(bundle_root(gate))
        bundle.policy.update(policy)
        return bundle

    return make


@pytest.fixture(scope="session")
def prernn_root(fixture_root):
    """cell -> folder of the tiny PreRNN bundle of that cell (tiny_prernn)."""
    pytest.importorskip("onnxruntime")
    return lambda cell: fixture_root / fixture_bundles.PRERNN[cell]


@pytest.fixture
def prernn(prernn_root):
    """prernn(cell, **policy) -> a freshly loaded PreRNN Bundle with its policy updated in memory."""
    from edgevid.bundle import load_bundle

    def make(cell: str = "lstm", **policy):
        bundle = load_bundle(prernn_root(cell))
        bundle.policy.update(policy)
        return bundle

    return make


@pytest.fixture(scope="session")
def clip_root(fixture_root):
    """The folder of the tiny clip (SlowFast-contract) bundle (tiny_clip)."""
    pytest.importorskip("onnxruntime")
    return fixture_root / fixture_bundles.CLIP


@pytest.fixture
def clip_bundle(clip_root):
    """clip_bundle(**policy) -> a freshly loaded clip Bundle whose policy is updated in memory."""
    from edgevid.bundle import load_bundle

    def make(**policy):
        bundle = load_bundle(clip_root)
        bundle.policy.update(policy)
        return bundle

    return make


@pytest.fixture(scope="session")
def video(tmp_path_factory):
    """A 24-frame 10 fps MJPG .avi of moving blocks (96x72)."""
    pytest.importorskip("cv2")
    from tests.helpers import tiny_liteeval

    return tiny_liteeval.write_video(tmp_path_factory.mktemp("video") / "clip.avi", frames=24)


# --- the small LiteEval of the export and verify tests (torch) -------------------------------------------------
@pytest.fixture(scope="session")
def liteeval_model():
    """A small LiteEval (tiny CNNs, head of the brief) with trained-like BN and a switching gate.

    Shared by the session: tests must not modify it (deep-copy first).
    """
    pytest.importorskip("torch")
    from tests.helpers.export_helpers import small_model

    return small_model()


@pytest.fixture(scope="session")
def liteeval_bundle(liteeval_model, tmp_path_factory):
    """liteeval_model exported (export_bundle) once per session."""
    from edgevid.export import export_bundle

    out = tmp_path_factory.mktemp("bundles") / "small"
    return export_bundle(liteeval_model, out, labels=liteeval_model.config.labels,
                         checkpoint_info={"path": "ckpt.pt", "epoch": 3})


@pytest.fixture(scope="session")
def liteeval_features(liteeval_model):
    from tests.helpers.export_helpers import STEPS, random_features

    cfg = liteeval_model.config
    return random_features(STEPS, cfg.coarse_feat, cfg.fine_feat, seed=7)
