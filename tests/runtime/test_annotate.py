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


def test_each_family_path_has_its_own_word_and_look():
    from edgevid.runtime.annotate import PATH_STYLES, path_style

    paths = ("fine", "coarse", "clip", "held", "step", "fused")  # LiteEval, SlowFast, PreRNN, a fusion
    assert set(PATH_STYLES) == set(paths)
    looks = [path_style(p) for p in paths]
    assert len({word.lower() for word, _, _ in looks}) == 6  # "held" and "clip" are not shown as "coarse"
    assert len({(colour, filled) for _, colour, filled in looks}) == 6
    assert path_style("clip")[0] == "CLIP" and path_style("held")[0] == "held" and path_style("step")[0] == "step"
    assert path_style("later")[0] == "later"  # a path added later shows as itself


def _read_all(path):
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        out.append(img)
    cap.release()
    return out


@pytest.mark.parametrize("path", ["fine", "coarse", "clip", "held", "step", "fused"])
def test_the_overlay_shows_the_path_in_its_colour(tmp_path, path):
    from edgevid.runtime.annotate import PATH_STYLES, path_style

    target = tmp_path / "out.avi"
    with AnnotatedVideoWriter(target, fps=10) as writer:
        for i in range(3):
            writer.write(np.zeros((360, 480, 3), np.uint8), pred(i, path))
    box = _read_all(target)[-1][:60].reshape(-1, 3).astype(int)  # the overlay, top left

    def near(colour):
        return int((np.abs(box - np.array(colour)).max(1) < 45).sum())

    own = path_style(path)[1]
    assert near(own) > 20, (path, near(own))
    grey = PATH_STYLES["coarse"][1]  # white text is anti-aliased through grey: only the colours are told apart
    for other in {c for _, c, _ in PATH_STYLES.values()} - {own, grey}:
        assert near(other) < 5, (path, other, near(other))


def test_fps_is_the_streams_not_the_writers(tmp_path, monkeypatch):
    """Predictions captured at 50 fps reach the writer in bursts of 10 (all at once, every 0.2 s): the video
    shows 50 fps, not the thousands an average of 1/interval at the writer would give."""
    import types

    from edgevid.runtime import annotate

    clock = {"now": 0.0}
    monkeypatch.setattr(annotate, "time", types.SimpleNamespace(perf_counter=lambda: clock["now"]))
    with AnnotatedVideoWriter(tmp_path / "out.avi", fps=10) as writer:
        assert writer.stream_fps is None
        for i in range(100):
            clock["now"] = 0.2 * (i // 10 + 1)
            p = pred(i, "step")
            p.latency = clock["now"] - i / 50.0  # captured at i/50 s
            writer.write(np.zeros((60, 80, 3), np.uint8), p)
        assert writer.stream_fps == pytest.approx(50.0, rel=1e-6)


def test_fps_window_follows_a_rate_change(tmp_path, monkeypatch):
    import types

    from edgevid.runtime import annotate

    clock = {"now": 0.0}
    monkeypatch.setattr(annotate, "time", types.SimpleNamespace(perf_counter=lambda: clock["now"]))
    with AnnotatedVideoWriter(tmp_path / "out.avi", fps=10) as writer:
        for i in range(600):  # 10 s at 100 fps, then 10 s at 20 fps
            clock["now"] = i / 100.0 if i < 1000 else 0.0
            writer.write(np.zeros((60, 80, 3), np.uint8), pred(i, "clip"))
        assert writer.stream_fps == pytest.approx(100.0, rel=1e-6)
        for i in range(200):
            clock["now"] = 6.0 + (i + 1) / 20.0
            writer.write(np.zeros((60, 80, 3), np.uint8), pred(600 + i, "held"))
        assert writer.stream_fps == pytest.approx(20.0, rel=1e-6)


def test_a_fused_prediction_shows_a_line_per_member(tmp_path):
    from edgevid.fusion.runtime import FusedPrediction

    members = {"colour": {"label": "walk", "score": 0.8, "weight": 0.4, "contribution": 0.3, "fresh": True,
                          "path": "step"},
               "flow": {"label": "walk", "score": 0.9, "weight": 0.6, "contribution": 0.5, "fresh": False,
                        "path": "clip"}}
    heights = {}
    for name, extra in (("plain", {}), ("fused", {"members": members})):
        target = tmp_path / (name + ".avi")
        with AnnotatedVideoWriter(target, fps=10) as writer:
            writer.write(np.full((360, 480, 3), 255, np.uint8),
                         FusedPrediction(0, 0.0, "walk", 1, 0.8, "fused", **extra))
        frame = _read_all(target)[0]
        heights[name] = int((frame[:, 2] < 40).all(axis=1).sum())  # rows of the black box at its left edge
    assert heights["fused"] > heights["plain"] * 1.8  # two member lines under the two of a single model
