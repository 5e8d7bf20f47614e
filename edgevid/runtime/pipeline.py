"""Run a chain of stage functions over a source, either pipelined (one thread per stage) or sequentially.

Pipelined layout (every arrow is a bounded ``queue.Queue(queue_size)``)::

    source ─► [capture] ─q─► [stage 1] ─q─► … ─q─► [stage n] ─q─► caller's ``for`` loop

- Live sources: a full queue drops its OLDEST item to make room (counted per queue, logged once), so
  the newest frame always gets through and latency stays bounded. The last queue (finished results)
  never drops: a result has already advanced the recurrent state.
- File sources: a full queue blocks the producer; nothing is lost.
- Every blocking get/put polls a shared stop event, so a stop is seen within ``_POLL_S``.
- A stage (or the source) that raises ends the stream there: items that got past that point before
  still come out, then the caller's iteration re-raises that very exception. With ``skip_bad_frames`` a
  FrameError (a corrupt or malformed frame) only drops that frame, counted in stats ``bad_frames``.
- The caller leaving early (``break``, ``close()``, garbage collection of the generator) stops the
  stages. In every case all threads are joined before the generator finishes.

A stage that returns ``None`` consumed its item without passing anything on (a clip window that is
not full yet, a frame held for later): nothing goes downstream for it.

Sequential mode runs the same stage functions one after another in the caller's thread.
"""
from __future__ import annotations

import contextlib
import logging
import queue
import threading
from typing import Any, Callable, ContextManager, Iterable, Iterator, List, Optional, Sequence, Tuple

from ..errors import FrameError
from ..log import get_logger, once
from .stats import StreamStats, timed

log = get_logger(__name__)

StageFn = Callable[[Any], Any]
_POLL_S = 0.05
_END = object()  # end of stream, passed down the chain
_STOPPED = object()  # returned by a get/put that gave up because stop was set


class _Failed:
    """A stage or the source raised: passed down like the end of stream, so that items finished before
    the failure still reach the caller, in order, and then the error is raised there."""

    def __init__(self, error: BaseException):
        self.error = error


class _Link:
    """A bounded queue between two stages with stop-aware blocking and optional drop-oldest."""

    def __init__(self, name: str, size: int, drop_oldest: bool, stop: threading.Event, stats: StreamStats):
        self.name, self.drop_oldest, self.stop, self.stats = name, drop_oldest, stop, stats
        self.q: "queue.Queue[Any]" = queue.Queue(maxsize=size)

    def put(self, item: Any) -> bool:
        """False when stop was set before the item could be queued."""
        if self.drop_oldest and not _final(item):
            return self._put_dropping(item)
        while not self.stop.is_set():
            try:
                self.q.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _put_dropping(self, item: Any) -> bool:
        while not self.stop.is_set():
            try:
                self.q.put_nowait(item)
                return True
            except queue.Full:
                pass
            try:
                self.q.get_nowait()
            except queue.Empty:
                continue  # the consumer took one meanwhile: there is room now
            self.stats.add_drop(self.name)
            once(log, logging.WARNING, "live source is faster than the pipeline: dropping the oldest queued "
                                       "frames to keep latency bounded (counted in stats 'dropped')")
        return False

    def get(self) -> Any:
        while not self.stop.is_set():
            try:
                return self.q.get(timeout=_POLL_S)
            except queue.Empty:
                continue
        return _STOPPED


class Pipeline:
    """Stages ``[(name, fn), …]`` applied in order to each item of a source.

    ``capture`` names the timing of pulling one item from the source; ``on_source_item(item)`` is called
    for each (the runtime counts frames and reconnects there). Timings go to ``stats.add_stage``.
    """

    def __init__(self, stages: Sequence[Tuple[str, StageFn]], stats: StreamStats, *, queue_size: int = 4,
                 on_source_item: Optional[Callable[[Any], None]] = None,
                 thread_context: Optional[Callable[[], ContextManager[Any]]] = None, skip_bad_frames: bool = False):
        if queue_size < 1:
            from ..errors import ConfigError
            raise ConfigError("queue_size is %r" % (queue_size,), "queues hold at least one item",
                              "use queue_size=4 (the default) or more")
        self.stages = list(stages)
        self.stats = stats
        self.queue_size = int(queue_size)
        self.on_source_item = on_source_item
        self.thread_context = thread_context or contextlib.nullcontext
        self.skip_bad_frames = skip_bad_frames
        self._said_bad_frame = False
        self.threads: List[threading.Thread] = []

    # sequential ----------------------------------------------------------------------------------
    def run_sequential(self, source: Iterable[Any]) -> Iterator[Any]:
        it = iter(source)
        while True:
            item = self._pull(it)
            if item is _END:
                return
            with self.thread_context():  # entered per item: the caller's thread may do other work between
                for name, fn in self.stages:
                    item = self._timed(name, fn, item)
                    if item is None:
                        break
            if item is not None:
                yield item

    # pipelined -----------------------------------------------------------------------------------
    def run_pipelined(self, source: Iterable[Any], *, live: bool = False) -> Iterator[Any]:
        stop = threading.Event()
        names = ["capture"] + [name for name, _ in self.stages]
        links = [_Link("%s>%s" % (a, b), self.queue_size, live, stop, self.stats)
                 for a, b in zip(names, names[1:] + ["out"])]
        links[-1].drop_oldest = False  # finished results are never dropped
        self.threads = [threading.Thread(target=self._capture_loop, args=(source, links[0], stop),
                                         name="edgevid-capture", daemon=True)]
        for (name, fn), q_in, q_out in zip(self.stages, links, links[1:]):
            self.threads.append(threading.Thread(target=self._stage_loop, args=(name, fn, q_in, q_out),
                                                 name="edgevid-" + name, daemon=True))
        for thread in self.threads:
            thread.start()
        finished = False
        try:
            while True:
                item = links[-1].get()
                if item is _END:
                    finished = True
                if item is _END or item is _STOPPED:
                    break
                if isinstance(item, _Failed):
                    raise item.error
                yield item
        finally:
            stop.set()
            if not finished:
                _interrupt(source)
            for thread in self.threads:
                thread.join()

    def _capture_loop(self, source: Iterable[Any], out: _Link, stop: threading.Event) -> None:
        try:
            it = iter(source)
            while not stop.is_set():
                item = self._pull(it)
                if not out.put(item) or item is _END:
                    return
        except BaseException as e:  # anything (even SystemExit) must reach the caller, or it would wait forever
            _send_failure(e, out)

    def _stage_loop(self, name: str, fn: StageFn, q_in: _Link, q_out: _Link) -> None:
        try:
            with self.thread_context():  # per-thread setup/teardown (a CUDA context pushed and popped)
                self._serve(name, fn, q_in, q_out)
        except BaseException as e:  # travels behind the items finished before; the caller re-raises it
            _send_failure(e, q_out)

    def _serve(self, name: str, fn: StageFn, q_in: _Link, q_out: _Link) -> None:
        while True:
            item = q_in.get()
            if item is _STOPPED:
                return
            if not _final(item):
                item = self._timed(name, fn, item)
                if item is None:
                    continue  # consumed: nothing to pass on for this one
            if not q_out.put(item) or _final(item):
                return

    # shared --------------------------------------------------------------------------------------
    def _pull(self, it: Iterator[Any]) -> Any:
        try:
            item = timed(self.stats.add_stage, "capture", next, it)
        except StopIteration:
            return _END
        if self.on_source_item is not None:
            self.on_source_item(item)
        return item

    def _timed(self, name: str, fn: StageFn, item: Any) -> Any:
        if not self.skip_bad_frames:
            return timed(self.stats.add_stage, name, fn, item)
        try:
            return timed(self.stats.add_stage, name, fn, item)
        except FrameError as e:  # one corrupt frame of a live stream: counted, said once a run, the next goes on
            self.stats.count("bad_frames")
            if not self._said_bad_frame:
                self._said_bad_frame = True
                log.warning("skipping a frame the %s stage refused (counted in stats 'bad_frames'; pass "
                            "on_bad_frame='stop' to end the run instead): %s", name, e)
            return None


def _final(item: Any) -> bool:
    return item is _END or isinstance(item, _Failed)


def _send_failure(error: BaseException, out: _Link) -> None:
    log.debug("%s failed: %r", threading.current_thread().name, error)
    out.put(_Failed(error))  # False only when the caller already left: then nobody wants the error


def _interrupt(source: Any) -> None:
    """Cut a live source's wait (reconnect back-off) short so the capture thread can be joined."""
    interrupt = getattr(source, "interrupt", None)
    if callable(interrupt):
        interrupt()
