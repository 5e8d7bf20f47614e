"""Writing into a full disk or past a file-size limit (a real RLIMIT_FSIZE on the process, so every write past it
fails with EFBIG as on a full disk), or into a read-only folder: a clear error with exit code 13, no traceback,
and the bundle as it was before, with no temporary file left."""
from __future__ import annotations

import hashlib
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from edgevid.errors import OutputError
from tests.helpers.bundles import PRERNN, copy_bundle

pytest.importorskip("onnxruntime")
ROOT = Path(__file__).resolve().parents[2]


def tree(root: Path):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file()}


def limited(limit_bytes):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
    return apply


def calibrate(root, **popen):
    return subprocess.run([sys.executable, "-m", "edgevid", "calibrate", str(root), "--recipe",
                           str(ROOT / "calibration" / "prernn.json")], capture_output=True, text=True, cwd=str(ROOT),
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=300, **popen)


def test_a_file_size_limit_while_calibrating_leaves_the_bundle_as_it_was(tmp_path):
    root = copy_bundle(PRERNN["lstm"], tmp_path / "b")
    before = tree(root)
    done = calibrate(root, preexec_fn=limited(4096))
    assert done.returncode == OutputError.exit_code, done.stderr
    assert "cannot write" in done.stderr and "File too large" in done.stderr and "Traceback" not in done.stderr
    assert tree(root) == before  # nothing added, nothing half-written, no temporary file


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_bundle_folder_is_said_so(tmp_path):
    root = copy_bundle(PRERNN["lstm"], tmp_path / "b")
    os.chmod(str(root), 0o555)
    try:
        done = calibrate(root)
    finally:
        os.chmod(str(root), 0o755)
    assert done.returncode == OutputError.exit_code, done.stderr
    assert "Permission denied" in done.stderr and "Traceback" not in done.stderr


def test_an_annotated_video_at_the_size_limit_is_an_error_not_a_cut_video(tmp_path):
    pytest.importorskip("cv2")
    from tests.helpers.bundles import LITEEVAL, committed

    video = tmp_path / "out" / "annotated.avi"
    done = subprocess.run([sys.executable, "-m", "edgevid", "run", str(committed(LITEEVAL["mixed"])), "--source",
                           "synthetic:seed=2,segments=20,frames=16", "--out-video", str(video)],
                          capture_output=True, text=True, cwd=str(ROOT), env=dict(os.environ, PYTHONPATH=str(ROOT)),
                          timeout=300, preexec_fn=limited(200 * 1024))
    assert done.returncode == OutputError.exit_code, done.stderr
    assert "cannot write video" in done.stderr and "file size limit" in done.stderr and "Traceback" not in done.stderr
    assert list(video.parent.iterdir()) == []  # neither a cut video nor its temporary file


def test_a_file_size_limit_while_quantizing_leaves_the_calibrated_bundle_as_it_was(tmp_path):
    pytest.importorskip("onnx")
    root = copy_bundle(PRERNN["lstm"], tmp_path / "b")
    assert calibrate(root).returncode == 0
    before = tree(root)
    done = subprocess.run([sys.executable, "-m", "edgevid", "quantize", str(root), "--precision", "int8"],
                          capture_output=True, text=True, cwd=str(ROOT), env=dict(os.environ, PYTHONPATH=str(ROOT)),
                          timeout=300, preexec_fn=limited(2048))  # below the smallest graph it writes
    assert done.returncode == OutputError.exit_code, done.stderr
    assert "cannot write" in done.stderr and "Traceback" not in done.stderr
    assert tree(root) == before
