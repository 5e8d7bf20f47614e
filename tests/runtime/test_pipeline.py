"""The stage machinery on plain functions: order, drop-oldest for live sources, errors, early stop."""
from __future__ import annotations

import threading
import time

import pytest

from edgevid.runtime.pipeline import Pipeline
from edgevid.runtime.stats import StreamStats


class FakeSource:
    """A fast source of integers; ``live`` decides the queue policy; ``delay`` paces it."""

    def __init__(self, n, live=False, delay=0.0):
        self.n, self.live, self.delay = n, live, delay
        self.interrupted = False

    def __iter__(self):
        for i in range(self.n):
            if self.interrupted:
                return
            if self.delay:
                time.sleep(self.delay)
            yield i

    def interrupt(self):
        self.interrupted = True


def stage_threads():
    return [t for t in threading.enumerate() if t.name.startswith("edgevid-")]


def make(stages, queue_size=2):
    stats = StreamStats()
    return Pipeline(stages, stats, queue_size=queue_size), stats


def test_file_source_keeps_every_item_in_order():
    pipe, stats = make([("a", lambda x: x + 1), ("b", lambda x: x * 10)])
    out = list(pipe.run_pipelined(FakeSource(50), live=False))
    assert out == [(i + 1) * 10 for i in range(50)]
    assert stats.to_dict()["dropped"] == 0
    assert stats.to_dict()["stages_ms"]["a"]["count"] == 50
    assert not stage_threads()


@pytest.mark.parametrize("pipelined", [True, False])
def test_a_stage_returning_none_passes_nothing_on(pipelined):
    seen = []
    pipe, stats = make([("hold", lambda x: x if x % 3 == 0 else None), ("b", lambda x: seen.append(x) or x)])
    out = list(pipe.run_pipelined(FakeSource(10)) if pipelined else pipe.run_sequential(FakeSource(10)))
    assert out == seen == [0, 3, 6, 9]
    assert stats.to_dict()["stages_ms"]["hold"]["count"] == 10
    assert not stage_threads()


def test_sequential_gives_the_same_items():
    stages = [("a", lambda x: x + 1), ("b", lambda x: x * 10)]
    pipe, _ = make(stages)
    assert list(pipe.run_sequential(FakeSource(20))) == list(make(stages)[0].run_pipelined(FakeSource(20)))


def slow(x):
    time.sleep(0.01)
    return x


def test_live_source_drops_oldest_and_keeps_the_newest():
    pipe, stats = make([("pre", lambda x: x), ("slow", slow)], queue_size=2)
    out = list(pipe.run_pipelined(FakeSource(200, live=True), live=True))
    d = stats.to_dict()
    assert d["dropped"] > 0
    assert len(out) + d["dropped"] == 200  # every item was either delivered or counted as dropped
    assert out == sorted(out) and len(set(out)) == len(out)  # order kept, no duplicates
    assert out[-1] == 199  # dropping the OLDEST means the newest frame always gets through
    assert not stage_threads()


def test_live_drop_logs_once(caplog):
    caplog.set_level("WARNING", logger="edgevid")
    from edgevid import log as edgelog

    edgelog._said_once.clear()
    for _ in range(2):
        pipe, _ = make([("slow", slow)], queue_size=1)
        list(pipe.run_pipelined(FakeSource(60, live=True), live=True))
    assert sum("dropping the oldest" in r.getMessage() for r in caplog.records) == 1


def test_stage_exception_reaches_the_caller_and_threads_end():
    boom = ValueError("stage failed on item 7")

    def fail(x):
        if x == 7:
            raise boom
        return x

    pipe, _ = make([("ok", lambda x: x), ("fail", fail)])
    seen = []
    with pytest.raises(ValueError) as info:
        for x in pipe.run_pipelined(FakeSource(1000)):
            seen.append(x)
    assert info.value is boom  # the very exception, not a wrapper
    assert seen == list(range(7))
    assert not stage_threads()


def test_source_exception_reaches_the_caller():
    def broken():
        yield 1
        raise RuntimeError("camera unplugged")

    pipe, _ = make([("a", lambda x: x)])
    with pytest.raises(RuntimeError, match="unplugged"):
        list(pipe.run_pipelined(broken()))
    assert not stage_threads()


@pytest.mark.parametrize("live", [False, True])
def test_early_break_joins_threads_and_interrupts_the_source(live):
    source = FakeSource(10 ** 9, live=live, delay=0.001 if live else 0.0)
    pipe, _ = make([("a", lambda x: x), ("b", slow)])
    gen = pipe.run_pipelined(source, live=live)
    for i, _ in enumerate(gen):
        if i == 3:
            break
    gen.close()
    assert not stage_threads()
    assert source.interrupted


def test_bad_queue_size_is_a_config_error():
    from edgevid.errors import ConfigError

    with pytest.raises(ConfigError):
        make([("a", lambda x: x)], queue_size=0)
