"""A network source that is live but looks like a file: an MPEG-TS stream over HTTP (``….ts``) from a real HTTP
server on loopback, through OpenCV's FFmpeg. Guessed from its URL it is a file and ends at its first stop; said
live, it is reopened with back-off across a real outage (the server refusing connections, then back), and a
server that never returns ends the run with a SourceError after the retries, its stats still written."""
from __future__ import annotations

import functools
import http.server
import json
import os
import socketserver
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from edgevid.errors import SourceError
from edgevid.runtime.source import open_source
from tests.helpers.bundles import LITEEVAL, committed

cv2 = pytest.importorskip("cv2")
ROOT = Path(__file__).resolve().parents[2]
FRAMES = 20


class Server:
    """A real HTTP server serving a folder on a loopback port; ``down`` makes it answer 503 (a restarting
    server), ``stop`` ends it (a server that is gone)."""

    def __init__(self, folder: Path):
        self.down = False
        self.requests = 0
        owner = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                owner.requests += 1
                if owner.down:
                    self.send_error(503, "restarting")
                    return
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = socketserver.ThreadingTCPServer(("127.0.0.1", 0), functools.partial(Handler,
                                                                                          directory=str(folder)))
        self.httpd.daemon_threads = True
        self.url = "http://127.0.0.1:%d/stream.ts" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(tmp_path):
    writer = cv2.VideoWriter(str(tmp_path / "stream.ts"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    if not writer.isOpened():
        pytest.skip("this OpenCV cannot write MPEG-TS")
    for i in range(FRAMES):
        writer.write(np.full((48, 64, 3), 10 * i, np.uint8))
    writer.release()
    s = Server(tmp_path)
    yield s
    s.stop()


def test_guessed_from_its_url_the_stream_is_a_file_and_ends(server):
    with open_source(server.url) as src:
        assert not src.live
        assert len(list(src)) == FRAMES


def test_said_live_it_is_reopened_across_an_outage(server):
    frames = []
    with open_source(server.url, live=True, retries=6, backoff_s=0.05) as src:
        assert src.live
        for frame in src:
            frames.append(frame)
            if len(frames) == FRAMES:  # the stream stops here: the server is restarting for a while
                server.down = True
                threading.Timer(0.3, setattr, (server, "down", False)).start()
            if len(frames) == 2 * FRAMES:
                break
        reconnects = src.reconnects
    assert len(frames) == 2 * FRAMES and reconnects >= 2  # at least one refused reopen, then the one that worked
    assert all(b.timestamp > a.timestamp for a, b in zip(frames, frames[1:]))


def test_a_server_that_never_returns_ends_the_stream_after_the_retries(server):
    with open_source(server.url, live=True, retries=2, backoff_s=0.05) as src:
        server.stop()
        with pytest.raises(SourceError, match="stopped delivering frames.*failed 2 reconnect attempts"):
            list(src)


def test_the_run_ends_with_the_source_error_and_writes_its_stats(server, tmp_path):
    pytest.importorskip("onnxruntime")
    stats = tmp_path / "stats.json"
    proc = subprocess.Popen([sys.executable, "-m", "edgevid", "run", str(committed(LITEEVAL["mixed"])), "--source",
                             server.url, "--live", "--retries", "2", "--stats", str(stats)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=str(ROOT), env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.stdout.readline()  # streaming
    server.stop()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == SourceError.exit_code, err
    assert "stopped delivering frames" in err and "Traceback" not in err
    written = json.loads(stats.read_text())
    assert written["frames"] >= 1 and "stopped delivering frames" in written["error"] and written["reconnects"] == 2
