"""The annotated video writer: a readable video on success, nothing on failure."""
from __future__ import annotations

import numpy as np
import pytest

from edgevid.errors import ConfigError, FrameError
from edgevid.runtime.annotate import AnnotatedVideoWriter
from edgevid.runtime.stream import Prediction

cv2 = pytest.importorskip("cv2")


def frames(n=10, h=120, w=160):
    for i in range(n):
        img = np.zeros((h, w, 3), np.uint8)
        img[:, : (i + 1) * w // n] = 90
        yield img


def pred(i, path="fine"):
    return Prediction(i, i / 10.0, "walk", 1, 0.87, path, 0.01)


@pytest.mark.parametrize("name", ["out.avi", "out.mp4"])
def test_writes_a_readable_annotated_video(tmp_path, name):
    target = tmp_path / "sub" / name
    with AnnotatedVideoWriter(target, fps=10) as writer:
        for i, img in enumerate(frames()):
            writer.write(img, pred(i, "fine" if i % 2 else "coarse"))
    assert target.is_file()
    assert [p.name for p in target.parent.iterdir()] == [name]  # no temp file left
    cap = cv2.VideoCapture(str(target))
    read = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        read.append(img)
    cap.release()
    assert len(read) == 10 and read[0].shape == (120, 160, 3)
    # the overlay box is drawn top-left: the raw frame is black there
    assert read[3][5:20, 20:60].mean() > 20


def test_nothing_left_behind_on_error(tmp_path):
    target = tmp_path / "out.avi"
    with pytest.raises(RuntimeError):
        with AnnotatedVideoWriter(target, fps=10) as writer:
            for i, img in enumerate(frames()):
                writer.write(img, pred(i))
                if i == 4:
                    raise RuntimeError("consumer failed")
    assert list(tmp_path.iterdir()) == []


def test_bad_frame_is_a_frame_error_and_leaves_nothing(tmp_path):
    target = tmp_path / "out.avi"
    with pytest.raises(FrameError):
        with AnnotatedVideoWriter(target, fps=10) as writer:
            writer.write(np.zeros((120, 160, 3), np.uint8), pred(0))
            writer.write(np.zeros((120, 160, 4), np.uint8), pred(1))
    assert list(tmp_path.iterdir()) == []


def test_no_frames_leaves_nothing(tmp_path):
    with AnnotatedVideoWriter(tmp_path / "out.avi", fps=10):
        pass
    assert list(tmp_path.iterdir()) == []


def test_frames_of_another_size_are_resized(tmp_path):
    target = tmp_path / "out.avi"
    with AnnotatedVideoWriter(target, fps=5) as writer:
        writer.write(np.zeros((120, 160, 3), np.uint8), pred(0))
        writer.write(np.zeros((60, 80, 3), np.uint8), None)
    cap = cv2.VideoCapture(str(target))
    count = 0
    while cap.read()[0]:
        count += 1
    cap.release()
    assert count == 2


@pytest.mark.parametrize("path,fps", [("out", 10), ("out.avi", 0), ("out.avi", "fast")])
def test_bad_settings(tmp_path, path, fps):
    with pytest.raises(ConfigError):
        AnnotatedVideoWriter(tmp_path / path, fps=fps)


@pytest.mark.skipif(not hasattr(__import__("os"), "umask") or __import__("os").name != "posix", reason="POSIX modes")
def test_video_gets_the_umask_mode_not_mkstemps_private_one(tmp_path):
    import os
    import stat

    before = os.umask(0o022)
    try:
        target = tmp_path / "out.avi"
        with AnnotatedVideoWriter(target, fps=10) as writer:
            for i, img in enumerate(frames(3)):
                writer.write(img, pred(i))
    finally:
        os.umask(before)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
