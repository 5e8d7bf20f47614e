from __future__ import annotations

import os
import re

import numpy as np
import pytest

from edgevid.errors import DataError
from edgevid.data import probe_video, read_video, write_video

from .conftest import fine_stripes, frame_index, indexed_frames


@pytest.mark.parametrize("ext", [".avi", ".mkv"])
def test_round_trip_keeps_count_shape_and_pixels(tmp_path, ext):
    frames = np.stack([fine_stripes()] * 3 + list(indexed_frames(4)))
    path = write_video(tmp_path / ("a" + ext), frames, fps=12)
    out, fps = read_video(path)
    assert out.shape == frames.shape and out.dtype == np.uint8
    assert fps == pytest.approx(12)
    # FFV1 is lossless: 1 px colour stripes come back exactly
    assert np.array_equal(out, frames)


def test_probe(tmp_path):
    path = write_video(tmp_path / "a.avi", indexed_frames(7, 40, 56), fps=25)
    assert probe_video(path) == {"frames": 7, "fps": pytest.approx(25), "width": 56, "height": 40}


def test_write_checks_size_argument(tmp_path):
    with pytest.raises(DataError, match="frame 0"):
        write_video(tmp_path / "a.avi", indexed_frames(2), fps=10, size=(32, 32))
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("target_fps, expect", [
    (10, [0, 3, 6, 9, 12, 15, 18, 21, 24, 27]),          # 30 -> 10: every third frame
    (60, [i // 2 for i in range(60)]),                    # 30 -> 60: each frame twice
    (30, list(range(30))),
])
def test_fps_resampling_by_timestamp(tmp_path, target_fps, expect):
    path = write_video(tmp_path / "a.avi", indexed_frames(30), fps=30)
    out, fps = read_video(path, fps=target_fps)
    assert fps == target_fps
    assert [frame_index(f) for f in out] == expect


def test_max_frames(tmp_path):
    path = write_video(tmp_path / "a.avi", indexed_frames(30), fps=30)
    out, _ = read_video(path, fps=10, max_frames=4)
    assert [frame_index(f) for f in out] == [0, 3, 6, 9]


@pytest.mark.parametrize("make, message", [
    (lambda p: None, "does not exist"),
    (lambda p: p.mkdir(), "is a folder"),
    (lambda p: p.write_bytes(b""), "empty"),
    (lambda p: p.write_bytes(os.urandom(4096)), "cannot be opened"),
    (lambda p: p.write_bytes(b"RIFF" + b"\0" * 60), "cannot be opened|no decodable frames"),
])
def test_read_errors(tmp_path, make, message):
    path = tmp_path / "bad.avi"
    make(path)
    with pytest.raises(DataError, match=message):
        read_video(path)
    with pytest.raises(DataError):
        probe_video(path)


def avi_frame_chunks(data: bytes):
    """Byte offsets of the frame chunks ('00dc') in an AVI's movi list (before the idx1 index at the end)."""
    movi, index = data.find(b"movi"), data.rfind(b"idx1")
    return [m.start() for m in re.finditer(b"00dc", data) if movi < m.start() < index]


@pytest.mark.parametrize("where", ["at a frame boundary", "inside a frame"])
def test_a_file_cut_off_mid_stream_gives_exactly_the_frames_before_the_cut(tmp_path, where):
    frames = indexed_frames(20)
    data = write_video(tmp_path / "a.avi", frames, fps=10).read_bytes()
    chunks = avi_frame_chunks(data)
    assert len(chunks) == 20
    end = chunks[10] if where == "at a frame boundary" else (chunks[10] + chunks[11]) // 2
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[:end])  # the index at the end is lost as well, as when a recording is cut off
    out, _ = read_video(cut)
    assert np.array_equal(out, frames[:10])  # FFV1 is lossless: frames 0-9 exactly, nothing of the cut one


def test_a_file_cut_before_its_first_frame_or_in_its_header_is_refused(tmp_path):
    data = write_video(tmp_path / "a.avi", indexed_frames(20), fps=10).read_bytes()
    (tmp_path / "no_frames.avi").write_bytes(data[:avi_frame_chunks(data)[0]])
    with pytest.raises(DataError, match="no decodable frames"):
        read_video(tmp_path / "no_frames.avi")
    (tmp_path / "header.avi").write_bytes(data[:200])
    with pytest.raises(DataError, match="cannot be opened"):
        read_video(tmp_path / "header.avi")


def test_bad_arguments(tmp_path):
    with pytest.raises(DataError, match="no frames"):
        write_video(tmp_path / "a.avi", [], fps=10)
    with pytest.raises(DataError, match="fps"):
        write_video(tmp_path / "a.avi", indexed_frames(2), fps=0)
    with pytest.raises(DataError, match="codec"):
        write_video(tmp_path / "a.xyz", indexed_frames(2), fps=10)
    with pytest.raises(DataError, match="video writer"):
        write_video(tmp_path / "a.avi", indexed_frames(2), fps=10, fourcc="QQQQ")
    path = write_video(tmp_path / "b.avi", indexed_frames(2), fps=10)
    with pytest.raises(DataError, match="fps"):
        read_video(path, fps=-1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.avi"]


def test_failure_mid_write_leaves_nothing(tmp_path):
    def frames():
        yield from indexed_frames(3)
        raise RuntimeError("camera unplugged")

    with pytest.raises(RuntimeError):
        write_video(tmp_path / "a.avi", frames(), fps=10)
    assert list(tmp_path.iterdir()) == []


def test_bad_frame_mid_write_leaves_old_file_untouched(tmp_path):
    path = write_video(tmp_path / "a.avi", indexed_frames(5), fps=10)
    before = path.read_bytes()
    bad = list(indexed_frames(3)) + [np.zeros((48, 64), np.uint8)]
    with pytest.raises(DataError, match="frame 3"):
        write_video(path, bad, fps=10)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.avi"]


def test_iter_video_streams_the_same_frames(tmp_path):
    from edgevid.data import iter_video

    path = write_video(tmp_path / "a.avi", indexed_frames(12), fps=12)
    assert [frame_index(f) for f in iter_video(path, fps=4)] == [0, 3, 6, 9]
    assert [frame_index(f) for f in iter_video(path, max_frames=5)] == [0, 1, 2, 3, 4]
    with pytest.raises(DataError, match="does not exist"):
        iter_video(tmp_path / "nope.avi")  # fails on the call, not on the first next()
