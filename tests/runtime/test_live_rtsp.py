"""Live source loss and return over RTSP: a real RTSP server on loopback (tests/helpers/rtsp_server.py) crashes
mid-stream and is restarted on the same port. `edgevid run` reconnects with back-off, counts the outage, resets
the recurrent state on the gap and goes on; when the server never returns, the run ends with exit code 8 after
the retries, and its stats are still written."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from edgevid.errors import SourceError
from tests.helpers.bundles import PRERNN, committed
from tests.helpers.rtsp_server import RtspServer

cv2 = pytest.importorskip("cv2")
pytest.importorskip("onnxruntime")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def recording(tmp_path):
    path = tmp_path / "cam.ts"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    for i in range(40):
        writer.write(np.full((48, 64, 3), (i * 6) % 255, np.uint8))
    writer.release()
    return path.read_bytes()


def test_the_run_survives_a_server_restart_and_ends_cleanly_when_it_never_returns(recording, tmp_path):
    server = RtspServer(recording, packets_per_s=200)
    stats = tmp_path / "stats.json"
    cmd = [sys.executable, "-m", "edgevid", "run", str(committed(PRERNN["lstm"])), "--source", server.url, "--json",
           "--retries", "3", "--max-gap", "2", "--stats", str(stats)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(ROOT),
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    restarted = []
    try:
        for _ in range(10):
            assert proc.stdout.readline(), proc.stderr.read()
        server.stop()  # the server crashes mid-stream ...
        time.sleep(2.5)  # ... for longer than --max-gap ...
        restarted.append(RtspServer(recording, port=server.port, packets_per_s=200))  # ... and comes back
        deadline = time.monotonic() + 60
        while restarted[0].plays == 0 and time.monotonic() < deadline:
            proc.stdout.readline()
        for _ in range(10):  # predictions flow again from the restarted server
            assert proc.stdout.readline()
        restarted[0].stop()  # now it never returns
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
        for s in restarted:
            s.stop()
    assert proc.returncode == SourceError.exit_code, err
    assert "stopped delivering frames" in err and "Traceback" not in err
    written = json.loads(stats.read_text())
    assert written["reconnects"] >= 2 and written["frames"] >= 20 and restarted[0].plays >= 1
    assert written["resets_by_cause"].get("gap", 0) >= 1  # the state was not carried across the outage


def test_the_source_reopens_a_restarted_server_in_process(recording):
    from edgevid.runtime.source import open_source

    server = RtspServer(recording, packets_per_s=400)
    frames, later = [], []
    try:
        with open_source(server.url, retries=6, backoff_s=0.05) as src:
            assert src.live  # rtsp:// is live without being told
            for frame in src:
                frames.append(frame)
                if len(frames) == 10:
                    server.stop()
                    threading.Timer(0.3, lambda: later.append(RtspServer(recording, port=server.port))).start()
                if len(frames) == 80:  # well past what the client had buffered before the crash
                    break
            reconnects = src.reconnects
    finally:
        for s in later:
            s.stop()
    assert len(frames) == 80 and reconnects >= 1
