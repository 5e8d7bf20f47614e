"""Shared test helpers. Tests run on CPU; models are tiny; data is generated in the test."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

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


@pytest.fixture
def edgevid_cli():
    """``edgevid.cli.main`` for in-process CLI tests; the logging setup it installs is undone afterwards
    (its stderr handler would outlive the test's captured stream and hide records from caplog)."""
    import logging

    from edgevid.cli import main
    from edgevid.log import ROOT

    root = logging.getLogger(ROOT)
    saved = (list(root.handlers), root.level, root.propagate)
    yield main
    root.handlers[:], root.level, root.propagate = saved[0], saved[1], saved[2]
