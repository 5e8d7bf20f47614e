"""Sources: spec parsing, files, resampling, looping, reconnects, synthetic adapter, and every SourceError."""
from __future__ import annotations

import os
import sys
import types

import numpy as np
import pytest

from tests.helpers import tiny_liteeval as tiny
from edgevid.errors import EdgevidError, SourceError
from edgevid.runtime.source import CaptureSource, csi_pipeline, open_source, parse_spec

cv2 = pytest.importorskip("cv2")


def test_file_frames_timestamps_and_close(video):
    with open_source(str(video)) as src:
        assert not src.live and src.fps == pytest.approx(10.0)
        frames = list(src)
    assert [f.index for f in frames] == list(range(24))
    assert [f.timestamp for f in frames] == pytest.approx([i / 10.0 for i in range(24)])
    img = frames[0].image
    assert img.dtype == np.uint8 and img.shape == (72, 96, 3)
    assert all(b.captured >= a.captured for a, b in zip(frames, frames[1:]))
    assert list(src) == []  # closed: iteration is over


def test_fps_resamples_by_timestamp(video):
    with open_source(video, fps=2.5) as src:  # 10 fps file -> every 4th frame
        assert src.fps == pytest.approx(2.5)
        assert [f.index for f in src] == [0, 4, 8, 12, 16, 20]
    with open_source(video, fps=100) as src:  # never more frames than the source has
        assert src.fps == pytest.approx(10.0) and len(list(src)) == 24


def test_loop_continues_index_and_time(video):
    with open_source(video, loop=True) as src:
        frames = [f for _, f in zip(range(30), src)]
    assert [f.index for f in frames] == list(range(30))
    assert np.all(np.diff([f.timestamp for f in frames]) > 0)
    np.testing.assert_array_equal(frames[24].image, frames[0].image)


@pytest.mark.parametrize("spec,kind", [
    (0, "camera"), ("1", "camera"), ("/dev/video3", "camera"), ("rtsp://cam.local/stream", "url"),
    ("https://host/live", "url"), ("synthetic", "synthetic"), ("synthetic:seed=3,segments=2", "synthetic"),
    ("videotestsrc ! videoconvert ! appsink", "gstreamer"), ("csi://0", "gstreamer"), ("clip.mp4", "file"),
    ("file:///tmp/a.avi", "file"), ("some/dir/clip", "file"),
])
def test_parse_spec_forms(spec, kind):
    assert parse_spec(spec)[0] == kind


def test_synthetic_options_are_parsed():
    assert parse_spec("synthetic:seed=3,segments=20,frames=16,fps=10")[1] == {
        "seed": 3, "segments": 20, "frames": 16, "fps": 10.0}


def test_csi_pipeline_shape():
    assert "framerate=(fraction)30/1" in csi_pipeline()
    p = csi_pipeline(sensor_id=1, width=640, height=480, fps=30000 / 1001, flip=2)
    assert p.startswith("nvarguscamerasrc sensor-id=1 ! ")
    assert "framerate=(fraction)30000/1001" in p and "flip-method=2" in p and "width=(int)640" in p
    assert p.rstrip().split("!")[-1].split()[0] == "appsink" and "drop=1" in p
    assert parse_spec(p) == ("gstreamer", p)


# every SourceError ---------------------------------------------------------------------------------
def assert_helpful(error: EdgevidError):
    assert isinstance(error, SourceError) and error.what and (error.why or error.fix)


def test_missing_file(tmp_path):
    with pytest.raises(SourceError, match="does not exist") as info:
        open_source(str(tmp_path / "nope.mp4"))
    assert_helpful(info.value)


def test_zero_byte_file(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(SourceError, match="empty") as info:
        open_source(empty)
    assert_helpful(info.value)


@pytest.mark.parametrize("name", ["corrupt.mp4", "corrupt.avi"])
def test_corrupt_file(tmp_path, name):
    bad = tmp_path / name
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 50000, dtype=np.uint8).tobytes())
    with pytest.raises(SourceError) as info:
        open_source(bad)
    assert_helpful(info.value)
    assert "corrupt" in str(info.value)


def test_truncated_file(tmp_path, video):
    cut = tmp_path / "cut.avi"
    cut.write_bytes(video.read_bytes()[:300])  # the header survives, no frame does
    with pytest.raises(SourceError):
        open_source(cut)


def test_folder_is_not_a_video(tmp_path):
    with pytest.raises(SourceError, match="folder"):
        open_source(tmp_path)


@pytest.mark.parametrize("spec", [99, "99", "/dev/video99"])
def test_camera_that_does_not_exist(spec):
    with pytest.raises(SourceError, match="camera 99|video99") as info:
        open_source(spec)
    assert_helpful(info.value)


@pytest.mark.parametrize("spec", ["ftp://host/x.mp4", "webcam", "", None, 1.5, True, -1, "csi://x",
                                  "synthetic:colour=red", "synthetic:seed=x", "videotestsrc ! fakesink"])
def test_unknown_or_malformed_spec(spec):
    with pytest.raises(SourceError) as info:
        open_source(spec)
    assert_helpful(info.value)


def test_bad_fps(video):
    with pytest.raises(SourceError, match="frame rate"):
        open_source(video, fps=0)


def test_gstreamer_without_gstreamer_support_says_so():
    if "YES" in next((ln for ln in cv2.getBuildInformation().splitlines() if "GStreamer" in ln), ""):
        pytest.skip("this OpenCV has GStreamer")
    with pytest.raises(SourceError, match="without GStreamer"):
        open_source("videotestsrc num-buffers=3 ! videoconvert ! appsink")


# live reconnect --------------------------------------------------------------------------------------
class FakeCap:
    """A capture-like object delivering ``n`` frames, then failing reads."""

    def __init__(self, n, opened=True):
        self.left, self.opened, self.released = n, opened, False

    def isOpened(self):
        return self.opened

    def read(self):
        self.left -= 1
        return (True, np.full((32, 32, 3), self.left % 255, np.uint8)) if self.left >= 0 else (False, None)

    def get(self, prop):
        return 0.0

    def release(self):
        self.released = True


def test_live_source_reconnects_with_backoff(monkeypatch):
    caps = iter([FakeCap(3), FakeCap(0, opened=False), FakeCap(2), FakeCap(0), FakeCap(0), FakeCap(0)])
    waits = []
    src = CaptureSource(lambda: next(caps), "cam", live=True, retries=3, backoff_s=0.001)
    real_wait = src._closing.wait
    monkeypatch.setattr(src._closing, "wait", lambda t: (waits.append(t), real_wait(0))[1])
    frames = []
    with pytest.raises(SourceError, match="stopped delivering") as info:
        for f in src:
            frames.append(f)
    assert len(frames) == 5
    assert src.reconnects == 5  # 2 to recover after the first drop-out (one open failed), 3 at the end
    assert waits == pytest.approx([0.001, 0.002, 0.001, 0.002, 0.004])  # back-off doubles, resets after a frame
    assert "3 reconnect attempts" in str(info.value)
    assert [f.index for f in frames] == list(range(5))


def test_interrupt_cuts_a_backoff_short():
    import threading
    import time

    caps = iter([FakeCap(1)] + [FakeCap(0)] * 5)
    src = CaptureSource(lambda: next(caps), "cam", live=True, retries=5, backoff_s=30.0)
    next(src)
    threading.Timer(0.1, src.interrupt).start()
    start = time.perf_counter()
    assert list(src) == []
    assert time.perf_counter() - start < 5


def test_file_read_failure_is_end_of_stream_not_a_reconnect():
    src = CaptureSource(lambda: FakeCap(3), "file", live=False)
    assert len(list(src)) == 3 and src.reconnects == 0


def test_open_failure_and_no_first_frame():
    with pytest.raises(SourceError, match="cannot open"):
        CaptureSource(lambda: FakeCap(3, opened=False), "x", live=True)
    cap = FakeCap(0)
    with pytest.raises(SourceError, match="no frames"):
        CaptureSource(lambda: cap, "x", live=True)
    assert cap.released


# synthetic -----------------------------------------------------------------------------------------
class FakeSyntheticStream:
    """Stand-in with the agreed interface: iterable of BGR frames, ``.segments``."""

    def __init__(self, num_segments=2, segment_frames=4, fps=10.0, seed=0):
        self.n = num_segments * segment_frames
        self.segments = [(i * segment_frames, (i + 1) * segment_frames, i % 3) for i in range(num_segments)]
        self.fps, self.seed = fps, seed
        self._buf = np.zeros((48, 64, 3), np.uint8)

    def __iter__(self):
        for i in range(self.n):
            self._buf[:] = (i * 10 + self.seed) % 255  # reused buffer: the adapter must copy
            yield self._buf


@pytest.fixture
def fake_synthetic(monkeypatch):
    package = types.ModuleType("edgevid.data")
    package.__path__ = []
    module = types.ModuleType("edgevid.data.synthetic")
    module.SyntheticStream = FakeSyntheticStream
    monkeypatch.setitem(sys.modules, "edgevid.data", package)
    monkeypatch.setitem(sys.modules, "edgevid.data.synthetic", module)


def test_synthetic_adapter(fake_synthetic):
    with open_source("synthetic:seed=3,segments=3,frames=4,fps=5") as src:
        frames = list(src)
        assert src.segments == [(0, 4, 0), (4, 8, 1), (8, 12, 2)]
        assert not src.live and src.fps == 5.0
    assert len(frames) == 12
    assert [f.timestamp for f in frames] == pytest.approx([i / 5 for i in range(12)])
    assert frames[0].image[0, 0, 0] == 3 and frames[1].image[0, 0, 0] == 13  # copies, not one reused buffer


def test_synthetic_loop_and_resample(fake_synthetic):
    with open_source("synthetic:segments=1,frames=4,fps=10", fps=5, loop=True) as src:
        frames = [f for _, f in zip(range(5), src)]
    assert [f.index for f in frames] == [0, 2, 4, 6, 8]


def test_synthetic_bad_argument(fake_synthetic):
    with pytest.raises(SourceError, match="synthetic"):
        open_source("synthetic:frames=-1.5")


def test_real_synthetic_stream():
    pytest.importorskip("edgevid.data.synthetic")
    with open_source("synthetic:seed=1,segments=2,frames=4,fps=10") as src:
        frames = list(src)
        assert src.segments is not None
    assert len(frames) == 8
    assert all(f.image.dtype == np.uint8 and f.image.ndim == 3 and f.image.shape[2] == 3 for f in frames)


def test_synthetic_missing_module_is_a_source_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "edgevid.data.synthetic", None)  # import of it raises ImportError
    with pytest.raises(SourceError, match="synthetic"):
        open_source("synthetic")


def test_video_helper_is_sane(tmp_path):
    path = tiny.write_video(tmp_path / "v.avi", frames=3)
    with open_source(path) as src:
        assert len(list(src)) == 3


def test_a_file_cut_short_while_it_is_read_ends_with_a_warning_and_a_note(tmp_path, caplog):
    cv2 = pytest.importorskip("cv2")
    path = tmp_path / "cut.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 120))
    rng = np.random.RandomState(0)
    for _ in range(120):
        writer.write(rng.randint(0, 255, (120, 160, 3), np.uint8))  # noise: frames of real size
    writer.release()
    size = path.stat().st_size
    frames = 0
    with caplog.at_level("WARNING", logger="edgevid"), open_source(str(path)) as src:
        for _ in src:
            frames += 1
            if frames == 10:
                os.truncate(str(path), size // 3)  # a recorder's file cut while it is being read
        ended = src.ended_early
    assert 10 <= frames < 120
    assert ended == "%s ended after %d of the 120 frames it declares (cut short or damaged)" % (path, frames)
    assert "the run has the frames before the cut" in caplog.text


def test_a_complete_file_is_not_said_to_end_early(tmp_path):
    cv2 = pytest.importorskip("cv2")
    path = tmp_path / "whole.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(12):
        writer.write(np.full((48, 64, 3), i * 10, np.uint8))
    writer.release()
    with open_source(str(path)) as src:
        assert len(list(src)) == 12 and src.ended_early is None
