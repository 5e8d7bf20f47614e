"""run_stream: what `edgevid run` calls."""
from __future__ import annotations

import json
import threading

import pytest

from edgevid.errors import ConfigError, ManifestError, SourceError
from edgevid.runtime.cli_run import format_prediction, run_stream

pytest.importorskip("onnxruntime")
pytest.importorskip("cv2")


def test_json_lines_and_stats(make_bundle, video):
    bundle = make_bundle("mixed")
    lines, preds = [], []
    stats = run_stream(bundle.root, str(video), backend="ort", json_lines=True, emit=lines.append,
                       on_prediction=preds.append)
    assert len(lines) == len(preds) == stats["frames"] == 24
    first = json.loads(lines[0])
    assert set(first) == {"frame_index", "timestamp", "label", "class_index", "score", "path", "latency"}
    assert first["frame_index"] == 0
    assert stats["source"] == str(video) and stats["live"] is False and stats["pipelined"] is True
    json.dumps(stats)


def test_text_lines_max_frames_and_out_video(make_bundle, video, tmp_path):
    cv2 = pytest.importorskip("cv2")
    out = tmp_path / "annotated.avi"
    lines = []
    stats = run_stream(make_bundle("mixed").root, str(video), backend="ort", out_video=out, max_frames=7,
                       emit=lines.append)
    assert len(lines) == 7 and stats["frames"] == 7
    assert lines[0].startswith("#     0") and ("fine" in lines[0] or "coarse" in lines[0])
    cap = cv2.VideoCapture(str(out))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    assert n == 7
    assert [p.name for p in tmp_path.iterdir()] == ["annotated.avi"]
    assert not [t for t in threading.enumerate() if t.name.startswith("edgevid-")]


def test_step_fps_from_the_bundle_policy(make_bundle, video, tmp_path):
    bundle = make_bundle("mixed")
    bundle.policy["step_fps"] = 2.0
    bundle.save()  # run_stream loads from disk
    stats = run_stream(bundle.root, str(video), backend="ort")
    assert stats["step_fps"] == 2.0 and stats["frames"] == 5  # 24 frames at 10 fps, one step per 0.5 s
    assert run_stream(bundle.root, str(video), backend="ort", fps=5.0)["frames"] == 12
    bundle.policy["step_fps"] = None
    bundle.save()


def test_errors_surface_and_leave_no_video(make_bundle, tmp_path):
    root = make_bundle("mixed").root
    with pytest.raises(SourceError):
        run_stream(root, str(tmp_path / "missing.mp4"), out_video=tmp_path / "o.avi")
    with pytest.raises(ManifestError):
        run_stream(tmp_path / "no-bundle", "synthetic")
    with pytest.raises(ConfigError):
        run_stream(root, "x.mp4", max_frames=0)
    assert list(tmp_path.iterdir()) == []


def test_format_prediction_text():
    from edgevid.runtime.stream import Prediction

    line = format_prediction(Prediction(12, 1.2, "walk", 1, 0.873, "fine", 0.0412))
    assert line == "#    12     1.20s  walk             0.873  fine      41.2 ms"
