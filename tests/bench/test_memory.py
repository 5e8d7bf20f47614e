"""edgevid.bench.memory: the runtime path in a child process, its peak memory and no torch."""
from __future__ import annotations

import sys

from edgevid.bench.memory import child_command, measure_memory
from tests.helpers.bundles import LITEEVAL, committed


def test_memory_child_reports_peak_and_torch_not_loaded():
    r = measure_memory(committed(LITEEVAL["mixed"]), "synthetic:seed=1,segments=2,frames=8", backend="ort",
                       frames=10)
    assert r["torch_loaded"] is False and r["child"]["torch_loaded"] is False
    assert r["child"]["frames"] == 10 and r["child"]["backend"] == "ort"
    assert 0 < r["baseline_rss_mb"] < r["peak_rss_mb"]


def test_tegrastats_missing_is_not_measured_with_why():
    r = measure_memory(committed(LITEEVAL["fine"]), "synthetic:seed=1,segments=1,frames=4", backend="ort", frames=2,
                       tegrastats="no-such-tegrastats-here")
    assert set(r["tegrastats"]) == {"not_measured"} and "PATH" in r["tegrastats"]["not_measured"]


def test_child_command_runs_this_python():
    command = child_command("b", "synthetic", backend="ort", precision="int8", frames=5)
    assert command[0] == sys.executable and command[-2:] == ["--precision", "int8"]
