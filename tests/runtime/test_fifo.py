"""A camera that disappears at the OS level: a FIFO whose writer (a recorder, a camera bridge) dies. Said live, the
source waits for a writer with back-off and goes on when one comes back; without one it ends with a SourceError
after the retries, never blocked in OpenCV's open. A FIFO nobody writes into is refused at once."""
from __future__ import annotations

import os
import subprocess
import threading

import numpy as np
import pytest

from edgevid.errors import SourceError
from edgevid.runtime.source import open_source

cv2 = pytest.importorskip("cv2")
FRAMES = 15


@pytest.fixture
def fifo(tmp_path):
    video = tmp_path / "cam.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (96, 64))
    for i in range(FRAMES):
        writer.write(np.full((64, 96, 3), 12 * i, np.uint8))
    writer.release()
    path = tmp_path / "cam.fifo"
    os.mkfifo(str(path))
    return path, video


def feed(path, video):
    """A writer process: the recording into the FIFO, then it exits (the camera is gone)."""
    return subprocess.Popen(["sh", "-c", "cat '%s' > '%s'" % (video, path)])


def test_a_fifo_nobody_writes_into_is_refused_at_once(fifo):
    with pytest.raises(SourceError, match="no writer is feeding the FIFO"):
        open_source(str(fifo[0]), live=True)


def test_said_live_the_fifo_waits_for_its_writer_to_come_back_then_gives_up(fifo):
    path, video = fifo
    writers = [feed(path, video)]
    frames = []
    with open_source(str(path), live=True, retries=4, backoff_s=0.05) as src:
        with pytest.raises(SourceError, match="stopped delivering frames.*failed 4 reconnect attempts"):
            for frame in src:
                frames.append(frame)
                if len(frames) == FRAMES:  # the writer is gone; a new one comes a little later
                    threading.Timer(0.2, lambda: writers.append(feed(path, video))).start()
        reconnects = src.reconnects
    for w in writers:
        w.wait(timeout=10)
    assert len(frames) == 2 * FRAMES and reconnects >= 5  # both recordings, then the retries with no writer
