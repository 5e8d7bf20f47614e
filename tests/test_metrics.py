"""edgevid/metrics.py: the one latency summary (stats and bench)."""
from __future__ import annotations


def test_latency_summary_in_milliseconds_and_none_for_nothing():
    from edgevid.metrics import LATENCY_KEYS, latency_summary

    s = latency_summary([0.001, 0.002, 0.003, 0.010])
    assert s["n"] == 4 and s["min"] == 1.0 and s["max"] == 10.0 and s["mean"] == 4.0 and s["fps"] == 250.0
    assert s["p50"] == 2.5 and s["p50"] <= s["p90"] <= s["p99"] <= s["max"]
    empty = latency_summary([])
    assert set(empty) == set(LATENCY_KEYS) and empty["n"] == 0 and all(empty[k] is None for k in LATENCY_KEYS[1:])
