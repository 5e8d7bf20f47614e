"""edgevid.bench.stream on the committed fixture bundles (no torch): paced source, change delay, the streams
section's figures, what is not measured, and a source too short for the warm-up."""
from __future__ import annotations

import time

import numpy as np
import pytest

from edgevid.data.scoring import change_delay, score_stream
from edgevid.errors import SourceError
from edgevid.runtime.source import Frame, PacedSource
from tests.helpers.bundles import LITEEVAL, PRERNN, committed

SOURCE = "synthetic:seed=1,segments=3,frames=8,fps=50"


def _frames(n, fps):
    image = np.zeros((4, 4, 3), np.uint8)
    return [Frame(i, i / fps, image, 0.0) for i in range(n)]


def test_paced_source_releases_frames_no_faster_than_fps():
    fps, n = 50.0, 12
    start = time.perf_counter()
    released = [f.captured for f in PacedSource(_frames(n, fps))]
    assert len(released) == n
    for k, t in enumerate(released):
        assert t - released[0] >= k / fps - 1e-3  # frame k never before its timestamp
    assert released[-1] - start >= (n - 1) / fps - 1e-3
    assert all(b > a for a, b in zip(released, released[1:]))


def test_paced_source_is_live_and_stops_on_interrupt():
    paced = PacedSource(_frames(100, 2.0))  # 0.5 s apart
    it = iter(paced)
    next(it)
    paced.interrupt()
    start = time.perf_counter()
    assert list(it) == []
    assert time.perf_counter() - start < 0.2
    assert paced.live


SEGMENTS = [{"start": 0, "end": 4, "class": "a"}, {"start": 4, "end": 8, "class": "b"},
            {"start": 8, "end": 12, "class": "b"}, {"start": 12, "end": 16, "class": "c"},
            {"start": 16, "end": 20, "class": "a"}]


def _preds(labels):
    return [{"frame_index": i, "label": c} for i, c in enumerate(labels)]


def test_change_delay_on_a_hand_made_prediction_list():
    # a→b right at frame 4 +2 (frame 6); b→b is no change; b→c never right; c→a at 16 exactly
    labels = "aaaa" + "aabb" + "bbbb" + "bbbb" + "abbb"
    delay = change_delay(_preds(labels), SEGMENTS, fps=10.0)
    assert delay["changes"] == 3 and delay["missed"] == 1
    assert delay["delays_frames"] == [2, 0]
    assert delay["frames"]["mean"] == 1.0 and delay["frames"]["max"] == 2.0
    assert delay["ms"]["max"] == pytest.approx(200.0)


def test_change_delay_without_fps_or_correct_labels():
    delay = change_delay(_preds("x" * 20), SEGMENTS)
    assert delay["changes"] == 3 and delay["missed"] == 3 and delay["ms"] is None
    assert delay["frames"]["mean"] is None  # never a zero that reads as an instant switch


def test_score_stream_reports_the_change_delay():
    score = score_stream(_preds("aaaa" + "bbbb" * 3 + "aaaa"), SEGMENTS, fps=10.0)
    assert score["segment_accuracy"] == pytest.approx(4 / 5)
    assert score["change_delay"]["delays_frames"] == [0, 0]
    assert score["change_delay"]["missed"] == 1


@pytest.fixture(scope="module")
def liteeval_streams():
    from edgevid.bench.stream import measure_streams
    return measure_streams(committed(LITEEVAL["mixed"]), SOURCE, backend="ort", warmup=4)


def test_streams_section_of_a_liteeval_bundle(liteeval_streams):
    r = liteeval_streams
    pipe, seq = r["throughput"]["pipelined"], r["throughput"]["sequential"]
    assert pipe["predictions"] == seq["predictions"] == 24 and pipe["source_frames"] == 24
    assert r["throughput"]["pipelined_over_sequential"] == pytest.approx(pipe["fps"] / seq["fps"])
    assert pipe["latency_ms"]["n"] == 20  # warm-up left out
    assert {"capture", "preprocess", "coarse", "chain", "coarse_cnn", "coarse_step"} <= set(r["stages"]["pipelined"])
    assert r["compute_bound"]["runs_per_frame"]["coarse_cnn"] == 1.0
    assert r["compute_bound"]["runs_per_frame"]["fine_cnn"] == pytest.approx(pipe["fine_rate"])
    assert r["accuracy"]["segments"] == 3 and "change_delay" in r["accuracy"]
    assert len(r["fine_rate"]["rate"]) == 2  # 24 predictions, windows of 16


def test_always_fine_runs_every_step_on_the_fine_model(liteeval_streams):
    r = liteeval_streams
    assert r["always_fine"]["fine_rate"] == 1.0
    gated = r["throughput"]["pipelined"]
    assert r["gated_vs_always_fine"]["gmacs_per_frame"] == pytest.approx(
        gated["gmacs_per_frame"] / r["always_fine"]["gmacs_per_frame"])
    assert set(r["gated_vs_always_fine"]["accuracy_points"]) == {"segment_accuracy", "frame_accuracy"}


def test_paced_run_takes_the_stream_time(liteeval_streams):
    paced = liteeval_streams["paced"]
    assert paced["source_fps"] == 50.0
    assert paced["fps"] <= 50.0 * 1.1  # released on timestamps: never much faster than the source
    assert paced["latency_ms"]["n"] == len(paced["latency_samples_ms"]) == 20


def test_not_measured_entries_name_why():
    from edgevid.bench.stream import measure_streams
    r = measure_streams(committed(PRERNN["lstm"]), SOURCE, backend="ort", warmup=4)
    for key in ("fine_rate", "always_fine", "gated_vs_always_fine"):
        assert set(r[key]) == {"not_measured"} and r[key]["not_measured"]
    assert r["compute_bound"]["limit_fps"] > 0  # backbone and step are timed by role


def test_a_source_without_ground_truth_says_so(tmp_path):
    cv2 = pytest.importorskip("cv2")
    from edgevid.bench.stream import measure_streams
    from edgevid.data.synthetic import SyntheticStream

    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (64, 64))
    for image in SyntheticStream(2, 8, 25.0, seed=3, size=64):
        writer.write(image)
    writer.release()
    r = measure_streams(committed(PRERNN["gru"]), str(video), backend="ort", warmup=2)
    assert "not_measured" in r["segments"] and "not_measured" in r["accuracy"]


def test_a_source_that_ends_in_the_warm_up_is_a_source_error():
    from edgevid.bench.stream import measure_streams
    with pytest.raises(SourceError, match="warm-up"):
        measure_streams(committed(LITEEVAL["mixed"]), "synthetic:seed=1,segments=1,frames=4", backend="ort",
                        warmup=8)


def test_frames_caps_every_run():
    from edgevid.bench.stream import measure_streams
    r = measure_streams(committed(LITEEVAL["fine"]), SOURCE, backend="ort", frames=12, warmup=4)
    assert r["throughput"]["sequential"]["source_frames"] == r["paced"]["source_frames"] == 12


def test_gate_setting_is_model_or_fine():
    from edgevid.errors import ConfigError
    from edgevid.runtime.stream import StreamRuntime

    with pytest.raises(ConfigError, match="gate"):
        StreamRuntime(committed(LITEEVAL["mixed"]), "ort", gate="always")
    with pytest.raises(ConfigError, match="does not apply"):
        StreamRuntime(committed(PRERNN["lstm"]), "ort", gate="fine")


def test_throughput_alone_matches_the_streams_section_shape():
    from edgevid.bench.stream import throughput

    t = throughput(committed(LITEEVAL["coarse"]), SOURCE, backend="ort", warmup=4)
    assert set(t) == {"pipelined", "sequential", "pipelined_over_sequential"}
    assert t["pipelined"]["fine_rate"] == 0.0  # the coarse fixture's gate never asks for the fine model


def test_synthetic_spec_takes_the_clip_length():
    from edgevid.runtime.source import open_source

    with open_source("synthetic:seed=4,segments=2,frames=8,clip=4,fps=10") as src:
        assert src.stream.clip_frames == 4 and len(list(src)) == 16


def test_segments_past_a_frames_cap_are_not_scored():
    from edgevid.bench.stream import reached

    truth = [{"start": 0, "end": 4, "class": "a"}, {"start": 4, "end": 8, "class": "b"},
             {"start": 8, "end": 12, "class": "a"}]
    preds = [{"frame_index": i, "label": "a"} for i in range(9)]
    assert reached(truth, preds) == truth[:2] and reached(truth, []) == []
