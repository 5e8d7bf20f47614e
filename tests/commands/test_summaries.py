"""What the demo and 'edgevid run' print says what its figures measure: a quick demo is a smoke test, and the
latency of a file read as fast as possible includes queueing."""
from __future__ import annotations

from edgevid.commands.demo import format_report
from edgevid.commands.run import summary_line


def liteeval_report(quick):
    return {"model": "liteeval", "title": "LiteEval", "quick": quick,
            "accuracy": {"segment_accuracy": 0.0, "segments": 4, "frame_accuracy": 0.0},
            "latency_ms": {"p50": 321.0, "p90": 400.0, "p99": 450.0}, "fps": 47.0,
            "fine_rate": 0.1, "gmacs_per_frame": 0.25, "gmacs_always_fine": 1.8, "gmacs_saved": 0.86,
            "parity": {"ok": True, "gate_agreement": 1.0},
            "files": {"annotated_video": "annotated.avi", "bundle": "bundle", "stream": "data/stream.avi"}}


def test_quick_demo_summary_says_it_is_a_smoke_test():
    text = format_report(liteeval_report(quick=True), "out")
    assert "smoke test" in text and "accuracy is not meaningful" in text
    assert "0.0% of 4 held-out segments" in text and "not meaningful in a quick run" in text


def test_full_demo_summary_has_no_smoke_test_note():
    text = format_report(liteeval_report(quick=False), "out")
    assert "smoke test" not in text and "not meaningful" not in text


def test_demo_latency_says_what_it_measures():
    text = format_report(liteeval_report(quick=False), "out")
    assert "47.0 FPS" in text and "p50 321.0" in text
    assert "from capture to label" in text and "includes queueing" in text
    assert "as fast as possible" in text and "bench" in text


def stats(live):
    return {"family": "prernn", "frames": 10, "fps": 47.0, "live": live, "dropped": 0, "gmacs_per_frame": 0.01,
            "resets": 0, "latency_ms": {"p50": 321.0, "p90": 400.0, "p99": 450.0}}


def test_run_summary_names_the_latency_and_the_queueing_of_a_file():
    line = summary_line(stats(live=False))
    assert "capture-to-label latency p50 321.0" in line and "includes queueing" in line
    line = summary_line(stats(live=True))  # a camera drops frames instead of queueing them
    assert "capture-to-label latency p50 321.0" in line and "queueing" not in line
