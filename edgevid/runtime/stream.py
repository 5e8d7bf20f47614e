"""StreamRuntime: frames in, labels out, for a bundle of any model family.

Stages (pipelined: one thread each, bounded queues between, see pipeline.py)::

    capture ─► [flow: flow bundles only, flow.py] ─► family stages (stages.py: LiteEval gated.py, …) ─► Prediction

The family's stages class decides what runs per frame; the runtime gets one session per role of the
family (from the caller, or opened through the backend registry), runs the stages pipelined or
(``pipelined=False``) one after another in the caller's thread, and records stats, including which
backend, precision and file actually backed each role.
"""
from __future__ import annotations

import contextlib
import time
import weakref
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple, Union

from ..backends import Session, session_factory
from ..bundle import Bundle, load_bundle
from ..errors import ConfigError
from ..log import get_logger
from . import heap
from .device import preprocess as device_pre
from .flow import flow_stage
from .pipeline import Pipeline
from .prediction import Prediction
from .stats import StreamStats
from .threads import session_options

__all__ = ["Prediction", "StreamRuntime"]

log = get_logger(__name__)

BAD_FRAME = ("auto", "skip", "stop")
Sessions = Union[None, Mapping[str, Session], Callable[[Bundle, str], Session]]


class StreamRuntime:
    """Run a bundle over a frame source.

    ``run(source)`` is a generator of :class:`Prediction`; sessions are activated when iteration starts
    and deactivated when it ends (normally, by error, or when the caller stops early). ``stats`` is the
    :class:`StreamStats` of the latest run.

    Sessions: ``sessions`` is None (open each role through the backend registry on ``backend`` at
    ``precision``), a mapping role → Session, or a factory ``sessions(bundle, role) -> Session``; the
    runtime activates what is not active yet and deactivates what it activated. ``threads`` sets each
    session's intra-op threads (None: per role, from the cores and the family's stages; threads.py, which
    also says when they spin). ``policy_options`` are the family's (LiteEval: ``fine_cap``,
    ``fine_window``; SlowFast: ``every``, ``smooth``, ``pad``; PreRNN: ``max_steps``, ``max_gap_s``,
    ``scene_cut``), overriding the bundle's policy; None values are ignored, an option the family
    does not take is a ConfigError. ``preprocess``: where frames are prepared: "cpu" (OpenCV), "gpu"
    (libedgevid_preproc, feeding TensorRT engines from device memory; an error where it cannot) or "auto" (the
    GPU when every CNN is an engine of one GPU and the library is built, else the CPU); stats ``preprocess``
    says which ran. ``on_bad_frame``: a frame a stage refuses (FrameError: corrupt, wrong shape) is skipped and
    counted (stats ``bad_frames``) with "skip", ends the run with "stop", and with "auto" is skipped on a live
    source (a camera must not stop for one bad frame) and ends a file's run.
    """

    def __init__(self, bundle: Union[Bundle, str, Path], backend: str = "auto", *, precision: Any = None,
                 sessions: Sessions = None, pipelined: bool = True, queue_size: int = 4,
                 threads: Optional[int] = None, preprocess: str = "auto", on_bad_frame: str = "auto",
                 **policy_options: Any):
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        self.family = self.bundle.rules
        if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 1:
            raise ConfigError("queue_size is %r" % (queue_size,), "queues hold at least one item",
                              "use queue_size=4 (the default) or more")
        options = {k: v for k, v in policy_options.items() if v is not None}
        self.family.check_options(options)
        self.stages = self.family.entry("stages")
        self.plan = self.stages.check(self.bundle, options)  # the one validation: fail before any run
        flow_stage(self.bundle, self.plan)  # a flow bundle's settings too (nothing is computed yet)
        device_pre.check_mode(preprocess, backend)
        self.preprocess = preprocess
        if on_bad_frame not in BAD_FRAME:
            raise ConfigError("on_bad_frame is %r" % (on_bad_frame,), "a frame a stage refuses is skipped or ends "
                              "the run", "use on_bad_frame=%s" % " | ".join(BAD_FRAME))
        self.on_bad_frame = on_bad_frame
        self.pipelined = bool(pipelined)
        self.queue_size = queue_size
        self._sessions = self._session_source(sessions, backend, precision, threads)
        self.stats = self.new_stats()
        self._runs: "weakref.WeakSet[Any]" = weakref.WeakSet()
        self._live: "weakref.WeakSet[Any]" = weakref.WeakSet()  # stages of runs in progress

    def run(self, source: Any) -> Iterator[Prediction]:
        """Predictions for ``source``: a Source, any iterable of Frame, or a spec for ``open_source``."""
        gen = self._run(source)
        # weak: a run the caller abandons (break) must stay collectable, so its threads stop on collection
        self._runs.add(gen)
        return gen

    def request_reset(self) -> None:
        """Zero the recurrent state of the running streams before their next step (families whose
        stages have ``request_reset``, e.g. PreRNN); ConfigError for a family without one."""
        if not hasattr(self.stages, "request_reset"):
            raise ConfigError("a %s stream has no explicit state reset" % self.bundle.family,
                              "its policy resets on its own schedule only", "leave the request out")
        for stages in list(self._live):
            stages.request_reset()

    def close(self) -> None:
        """Stop runs that were started and not finished (joins their threads, frees their sessions)."""
        for gen in list(self._runs):
            gen.close()

    def __enter__(self) -> "StreamRuntime":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # internals -----------------------------------------------------------------------------------
    def _session_source(self, sessions: Sessions, backend: str, precision: Any,
                        threads: Optional[int]) -> Callable[[Bundle, str], Session]:
        if sessions is None:
            return session_factory(backend, precision,
                                   session_options(self.stages, self.family.roles, self.pipelined, threads))
        if callable(sessions):
            return sessions
        missing = [role for role in self.family.roles if role not in sessions]
        if missing:
            raise ConfigError("no session given for roles %s" % ", ".join(missing),
                              "a %s stream runs %s" % (self.family.title, ", ".join(self.family.roles)),
                              "pass a session for every role, or a factory(bundle, role)")
        given = dict(sessions)
        return lambda bundle, role: given[role]

    def _run(self, source: Any) -> Iterator[Prediction]:
        stats = self.stats = self.new_stats()
        with contextlib.ExitStack() as stack:
            if isinstance(source, (str, int, Path)):
                from .source import open_source
                source = stack.enter_context(open_source(source))
            stage_list, sessions = self.open_stages(stack, stats)
            live = bool(getattr(source, "live", False))
            pipeline = Pipeline(stage_list, stats, queue_size=self.queue_size, skip_bad_frames=self.skips(live),
                                on_source_item=lambda _: stats.add_source_frame(getattr(source, "reconnects", 0)),
                                thread_context=lambda: enter_all(s.thread_context() for s in sessions.values()))
            # the last count, also when the source fails without delivering another frame
            stack.callback(lambda: stats.set(reconnects=getattr(source, "reconnects", 0)))
            stack.callback(lambda: getattr(source, "ended_early", None) and stats.note("source_ended_early",
                                                                                        source.ended_early))
            stats.start()
            results = (pipeline.run_pipelined(source, live=live)
                       if self.pipelined else pipeline.run_sequential(source))
            stack.callback(results.close)  # joins the stage threads before the sessions are deactivated
            for pred, captured in results:
                pred.latency = time.perf_counter() - captured
                stats.add_prediction(pred.latency)
                yield pred

    def new_stats(self) -> StreamStats:
        """Empty stats for one run of this bundle (its GMACs per graph and gated roles)."""
        return StreamStats(self._gmacs(), gated_roles=self.family.gated_roles)

    def open_stages(self, stack: contextlib.ExitStack, stats: StreamStats, *,
                    flow: bool = True) -> Tuple[List[Tuple[str, Any]], Dict[str, Session]]:
        """Activate the sessions and make the stages of one run, recording into ``stats``; returns the stage
        functions (a flow bundle's flow stage first, unless ``flow`` is False: the caller makes the flow images)
        and the sessions. ``stack`` closes the stages and then frees the sessions; a composing runtime
        (edgevid.fusion.runtime) runs several bundles' stages in one pipeline."""
        sessions = self._activate(stack)
        stats.set(sessions={role: s.describe() for role, s in sessions.items()})
        # the queue size tells stages how many items can be between two of them (LiteEval's GPU feature ring)
        stages = self.stages(self.bundle, sessions, stats, dict(self.plan, queue_size=self.queue_size,
                                                                 preprocess=self.preprocess))
        stack.callback(stages.close)  # after the threads are joined (registered later, run earlier)
        self._live.add(stages)
        stack.callback(self._live.discard, stages)
        flow_fn = flow_stage(self.bundle, self.plan) if flow else None
        return ([("flow", flow_fn)] if flow_fn is not None else []) + stages.as_list(), sessions

    def skips(self, live: bool) -> bool:
        """Whether a frame a stage refuses is skipped (on_bad_frame) on a source that is ``live`` or not."""
        return self.on_bad_frame == "skip" or (self.on_bad_frame == "auto" and live)

    def _activate(self, stack: contextlib.ExitStack) -> Dict[str, Session]:
        sessions = {role: self._sessions(self.bundle, role) for role in self.family.roles}
        # the largest graph first: its load-time copies come and go while little else is resident (peak memory)
        with heap.loading_graphs():
            for session in sorted(sessions.values(), key=_file_size, reverse=True):
                if not session.active:
                    stack.enter_context(session)
        return sessions

    def _gmacs(self) -> Dict[str, Optional[float]]:
        return {role: self.bundle.graphs[role].gmacs for role in self.family.roles}


def _file_size(session: Session) -> int:
    path = getattr(session, "path", None)
    try:
        return path.stat().st_size if path is not None else 0
    except OSError:
        return 0  # a missing file is reported by the session itself when it opens


def enter_all(contexts) -> contextlib.ExitStack:
    """One context manager entering all of ``contexts`` (each session's per-thread context)."""
    stack = contextlib.ExitStack()
    with stack:
        for context in contexts:
            stack.enter_context(context)
        return stack.pop_all()
