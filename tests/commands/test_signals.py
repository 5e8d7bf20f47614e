"""SIGTERM (systemd stopping the unit) and SIGINT (Ctrl-C) during ``edgevid run``, sent to a real process: it stops
within seconds with exit code 130, and ``--stats`` is written, whole, with the frames it streamed."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.bundles import LITEEVAL, committed

pytest.importorskip("onnxruntime")
pytest.importorskip("cv2")
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stopped_run_writes_its_stats_and_exits_130(tmp_path, sig):
    stats = tmp_path / "stats.json"
    cmd = [sys.executable, "-m", "edgevid", "run", str(committed(LITEEVAL["mixed"])), "--source",
           "synthetic:seed=1,segments=4,frames=16", "--loop", "--stats", str(stats), "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(ROOT),
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        for _ in range(5):  # predictions are flowing: the run is in its stages, not starting up
            assert proc.stdout.readline(), proc.stderr.read()
        sent = time.monotonic()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=20)
        stopped_s = time.monotonic() - sent
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert stopped_s < 5, stopped_s
    assert "Traceback" not in err and "interrupted (stats written to %s)" % stats in err
    written = json.loads(stats.read_text())
    assert written["interrupted"] is True and written["frames"] >= 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stats.json"]  # no partial file beside it


def _stop_after(cmd, ready, sig=signal.SIGTERM, timeout=120):
    """Start ``cmd``, send ``sig`` once a line containing ``ready`` reached stderr; (exit code, stderr, seconds
    from the signal to the exit)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(ROOT),
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    seen = []
    try:
        for line in proc.stderr:
            seen.append(line)
            if ready in line:
                break
        sent = time.monotonic()
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=timeout)
        return proc.returncode, "".join(seen) + err, time.monotonic() - sent
    finally:
        proc.kill()


def tree(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(Path(root).rglob("*")) if p.is_file()}


def test_a_stopped_calibration_leaves_the_bundle_as_it_was(tmp_path):
    from tests.helpers.bundles import PRERNN, copy_bundle

    root = copy_bundle(PRERNN["lstm"], tmp_path / "b")
    before = tree(root)
    code, err, stopped_s = _stop_after([sys.executable, "-m", "edgevid", "calibrate", str(root), "--recipe",
                                        str(ROOT / "calibration" / "prernn.json")], "backend auto")
    assert code == 130 and "interrupted" in err and "Traceback" not in err, err
    assert stopped_s < 5 and tree(root) == before  # no feeds added, no temporary file left


def test_a_stopped_bench_writes_no_report_folder(tmp_path):
    out = tmp_path / "bench"
    code, err, stopped_s = _stop_after([sys.executable, "-m", "edgevid", "bench", str(committed(LITEEVAL["mixed"])),
                                        "--out", str(out), "--runs", "2000"], "graphs:")
    assert code == 130 and "interrupted" in err and "Traceback" not in err, err
    assert stopped_s < 5 and not out.exists()


def test_a_stopped_quantize_leaves_the_calibrated_bundle_as_it_was(tmp_path):
    pytest.importorskip("onnx")
    from tests.helpers.bundles import PRERNN, copy_bundle

    root = copy_bundle(PRERNN["lstm"], tmp_path / "b")
    subprocess.run([sys.executable, "-m", "edgevid", "calibrate", str(root), "--recipe",
                    str(ROOT / "calibration" / "prernn.json")], check=True, capture_output=True, cwd=str(ROOT),
                   env=dict(os.environ, PYTHONPATH=str(ROOT)))
    before = tree(root)
    code, err, stopped_s = _stop_after([sys.executable, "-m", "edgevid", "quantize", str(root), "--precision",
                                        "int8"], "end to end on the calibration streams")
    assert code == 130 and "interrupted" in err and "Traceback" not in err, err
    assert stopped_s < 5 and tree(root) == before  # no INT8 graph, no half-rewritten bundle.json
