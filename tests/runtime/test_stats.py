"""StreamStats arithmetic and thread safety."""
from __future__ import annotations

import json
import threading

import pytest

from edgevid.runtime.stats import StreamStats

GMACS = {"coarse_cnn": 0.08, "coarse_step": 0.00325, "fine_cnn": 7.8, "fine_step": 0.0424}
FINE = ("fine_cnn", "fine_step")  # LiteEval's gated roles (edgevid.families.liteeval)


def test_gmacs_and_fine_rate():
    s = StreamStats(GMACS, gated_roles=FINE)
    for path in ["fine", "coarse", "coarse", "coarse", "fine", "coarse", "coarse", "coarse", "coarse", "coarse"]:
        s.add_step(path, capped=False)
    d = s.to_dict()
    fine = 7.8 + 0.0424
    assert d["fine_rate"] == pytest.approx(0.2)
    assert d["gmacs_per_frame"] == pytest.approx(0.08 + 0.00325 + 0.2 * fine)
    assert d["gmacs_always_fine"] == pytest.approx(fine)
    assert d["gmacs_saved"] == pytest.approx(1 - (0.08 + 0.00325 + 0.2 * fine) / fine)
    assert d["gmacs_by_graph"] == GMACS


def test_other_families_report_gmacs_spent_per_source_frame():
    s = StreamStats({"clip": 50.3})
    for i in range(10):
        s.add_source_frame()
        if i % 4 == 3:
            s.add_gmacs(50.3)  # a clip every 4 frames
    s.add_gmacs(None)  # unknown cost is not counted
    d = s.to_dict()
    assert d["gmacs_per_frame"] == pytest.approx(2 * 50.3 / 10)
    assert d["gmacs_by_graph"] == {"clip": 50.3} and d["gmacs_saved"] is None


def test_families_without_a_fine_model_report_no_fine_rate():
    s = StreamStats({"backbone": 0.006, "step": 0.00001})
    s.set(steps=10)
    assert s.to_dict()["fine_rate"] is None


def test_paper_anchor_numbers():
    """docs/models.md §2.7: ≈10.74 fine steps of 129 with 0.08 / 7.82 GMACs gives 94.3 GMACs per video."""
    s = StreamStats({"coarse_cnn": 0.08, "coarse_step": 0.0, "fine_cnn": 7.82, "fine_step": 0.0}, gated_roles=FINE)
    s.set(steps=129000, fine_steps=10739)
    assert s.to_dict()["gmacs_per_frame"] * 129 == pytest.approx(94.3, abs=0.01)


def test_unknown_gmacs_and_empty_run_are_none_not_errors():
    d = StreamStats({"coarse_cnn": None}).to_dict()
    assert d["gmacs_per_frame"] is None and d["gmacs_saved"] is None and d["fine_rate"] is None
    assert d["latency_ms"]["p50"] is None and d["fps"] is None
    json.dumps(d)


def test_percentiles_and_drops():
    s = StreamStats(GMACS, gated_roles=FINE)
    s.start()
    for i in range(1, 101):
        s.add_stage("coarse", i / 1000.0)
        s.add_prediction(i / 1000.0)
    s.add_drop("a>b")
    s.add_drop("a>b")
    s.add_drop("b>c")
    d = s.to_dict()
    assert d["stages_ms"]["coarse"]["p50"] == pytest.approx(50.5)
    assert d["stages_ms"]["coarse"]["p99"] == pytest.approx(99.01)
    assert d["stages_ms"]["coarse"]["count"] == 100
    assert d["latency_ms"]["p90"] == pytest.approx(90.1)
    assert d["dropped"] == 3 and d["dropped_by_queue"] == {"a>b": 2, "b>c": 1}
    assert d["frames"] == 100 and d["fps"] > 0


def test_window_bounds_memory_but_counts_stay_exact():
    s = StreamStats(window=10)
    for i in range(1000):
        s.add_stage("x", float(i))
    d = s.to_dict()["stages_ms"]["x"]
    assert d["count"] == 1000 and d["p50"] == pytest.approx(994.5 * 1000)


def test_concurrent_recording():
    s = StreamStats(GMACS, gated_roles=FINE)

    def work():
        for _ in range(2000):
            s.add_step("fine")
            s.add_stage("x", 0.001)
            s.add_drop("q")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    d = s.to_dict()
    assert d["steps"] == d["fine_steps"] == 8000 and d["dropped"] == 8000
    assert d["stages_ms"]["x"]["count"] == 8000


def test_timed_records_the_call_once_and_nothing_when_it_raises():
    from edgevid.runtime.stats import timed

    seen = []
    assert timed(lambda name, s: seen.append((name, s)), "g", lambda a, b: a + b, 2, 3) == 5
    assert [n for n, _ in seen] == ["g"] and seen[0][1] >= 0
    with pytest.raises(ZeroDivisionError):
        timed(lambda name, s: seen.append((name, s)), "bad", lambda: 1 / 0)
    assert len(seen) == 1
    assert timed(None, "none", len, [1, 2]) == 2  # no recorder: just the call
