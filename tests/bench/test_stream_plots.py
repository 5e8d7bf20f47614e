"""edgevid.bench.stream_plots: every plot of a measured streams section, and skipping what was not measured."""
from __future__ import annotations

import pytest

from tests.helpers.bundles import LITEEVAL, PRERNN, committed

SOURCE = "synthetic:seed=2,segments=3,frames=8,fps=50"
PNG = b"\x89PNG\r\n\x1a\n"


def test_liteeval_streams_give_four_pngs(tmp_path):
    pytest.importorskip("matplotlib")
    from edgevid.bench.stream import measure_streams
    from edgevid.bench.stream_plots import write_stream_plots

    report = {"streams": measure_streams(committed(LITEEVAL["mixed"]), SOURCE, backend="ort", warmup=4)}
    names = write_stream_plots(report, tmp_path)
    assert names == ["stream_latency.png", "stream_fine_rate.png", "stream_stages.png", "stream_gated_vs_fine.png"]
    for name in names:
        assert (tmp_path / name).read_bytes()[:8] == PNG


def test_plots_of_what_was_not_measured_are_left_out(tmp_path):
    pytest.importorskip("matplotlib")
    from edgevid.bench.stream import measure_streams
    from edgevid.bench.stream_plots import write_stream_plots

    streams = measure_streams(committed(PRERNN["gru"]), SOURCE, backend="ort", warmup=4)
    assert write_stream_plots(streams, tmp_path) == ["stream_latency.png", "stream_stages.png"]
