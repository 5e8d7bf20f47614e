"""StreamRuntime: frames in, labels out, for a LiteEval bundle.

Stages (pipelined: one thread each, bounded queues between, see pipeline.py)::

    capture ─► preprocess (224 + 112) ─► coarse_cnn (112) ─► chain: coarse_step ─► [fine_cnn ─► fine_step]
                                                                     (serial: the gate needs the last fine state)

The stateless coarse CNN runs ahead of the serial chain on later frames; the fine CNN runs inside the
chain because whether it runs at all depends on the gate of the same step. ``pipelined=False`` calls
the same stage functions one after another in the caller's thread.
"""
from __future__ import annotations

import contextlib
import math
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

import numpy as np

from ..backends import open_session
from ..bundle import Bundle, load_bundle
from ..errors import ConfigError, FrameError, ManifestError
from ..log import get_logger
from .pipeline import Pipeline
from .policies import GatedPolicy, check_settings
from .stats import StreamStats

log = get_logger(__name__)

ROLES = ("coarse_cnn", "coarse_step", "fine_cnn", "fine_step")


@dataclass
class Prediction:
    """The label for one frame. ``latency`` is seconds from capture to the label reaching the caller.

    ``image`` (the BGR frame) and ``logits`` ([C]) ride along for annotation and checks; ``to_dict``
    leaves them out.
    """

    frame_index: int
    timestamp: float
    label: str
    class_index: int
    score: float
    path: str
    latency: float = 0.0
    image: Optional[np.ndarray] = field(default=None, repr=False, compare=False)
    logits: Optional[np.ndarray] = field(default=None, repr=False, compare=False)

    def to_dict(self) -> Dict[str, Any]:
        return {"frame_index": self.frame_index, "timestamp": self.timestamp, "label": self.label,
                "class_index": self.class_index, "score": self.score, "path": self.path, "latency": self.latency}


class _Work:
    """One frame on its way through the stages."""

    __slots__ = ("frame", "inputs", "feat_c")

    def __init__(self, frame: Any, inputs: Dict[int, np.ndarray]):
        self.frame = frame
        self.inputs = inputs
        self.feat_c: Optional[np.ndarray] = None


class _LiteEvalStages:
    """The stage functions over active sessions; each is called by one thread at a time."""

    def __init__(self, bundle: Bundle, sessions: Dict[str, Any], stats: StreamStats, *,
                 fine_cap: Optional[int], fine_window: Optional[int]):
        from .preprocess import Preprocessor

        self.labels = list(bundle.labels)
        self.coarse_size = _frame_size(bundle, "coarse_cnn")
        self.fine_size = _frame_size(bundle, "fine_cnn")
        missing = {self.coarse_size, self.fine_size} - set(bundle.preprocess.sizes)
        if missing:
            raise ManifestError("bundle %s preprocesses to sizes %s" % (bundle.root, list(bundle.preprocess.sizes)),
                                "its CNN graphs need %s" % sorted(missing), "re-export the bundle")
        self.pre = Preprocessor(bundle.preprocess)
        self.coarse_cnn = sessions["coarse_cnn"]
        self.stats = stats
        self.policy = GatedPolicy(bundle, sessions, fine_cap=fine_cap, fine_window=fine_window,
                                  record=stats.add_stage)

    def as_list(self) -> List[Tuple[str, Any]]:
        return [("preprocess", self.preprocess), ("coarse", self.coarse), ("chain", self.chain)]

    def preprocess(self, frame: Any) -> _Work:
        image = getattr(frame, "image", None)
        if image is None:
            raise FrameError("a source yielded %s" % type(frame).__name__, "the runtime needs Frame objects",
                             "open sources with edgevid.runtime.source.open_source")
        # the preprocessor reuses its output buffers: queued work must own its inputs
        inputs = {size: np.array(arr) for size, arr in self.pre(image).items()
                  if size in (self.coarse_size, self.fine_size)}
        return _Work(frame, inputs)

    def coarse(self, work: _Work) -> _Work:
        out = self.coarse_cnn.infer({"frame": work.inputs[self.coarse_size]})
        work.feat_c = np.array(out["feat"])
        return work

    def chain(self, work: _Work) -> Tuple[Prediction, float]:
        frame = work.frame
        logits, path = self.policy.step(work.feat_c, work.inputs[self.fine_size], frame.timestamp)
        self.stats.add_step(path, self.policy.last_capped)
        self.stats.set(resets=self.policy.resets)
        logits = logits.reshape(-1)
        index = int(np.argmax(logits))
        probs = _softmax(logits)
        label = self.labels[index] if index < len(self.labels) else str(index)
        pred = Prediction(frame.index, float(frame.timestamp), label, index, float(probs[index]), path,
                          image=frame.image, logits=logits)
        return pred, frame.captured


class StreamRuntime:
    """Run a LiteEval bundle over a frame source.

    ``run(source)`` is a generator of :class:`Prediction`; sessions are activated when iteration starts
    and deactivated when it ends (normally, by error, or when the caller stops early). ``stats`` is the
    :class:`StreamStats` of the latest run. ``threads`` sets each session's intra-op threads (None: 1 when
    pipelined, since the stages already keep the cores busy and intra-op pools of four sessions fight
    over them, measured 2-3x slower on 2 cores; the backend's default when sequential). ``fine_cap``/``fine_window`` override the bundle's policy.
    """

    def __init__(self, bundle: Union[Bundle, str, Path], backend: str = "ort", *, pipelined: bool = True,
                 queue_size: int = 4, threads: Optional[int] = None, fine_cap: Optional[int] = None,
                 fine_window: Optional[int] = None):
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        if self.bundle.family != "liteeval":
            raise ConfigError("StreamRuntime cannot run a %s bundle yet" % self.bundle.family,
                              "only the LiteEval gated policy is built", "use a LiteEval bundle")
        for role in ROLES:
            self.bundle.graph(role)  # ManifestError now rather than at the first frame
        if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 1:
            raise ConfigError("queue_size is %r" % (queue_size,), "queues hold at least one item",
                              "use queue_size=4 (the default) or more")
        check_settings(self.bundle.policy, fine_cap=fine_cap, fine_window=fine_window)  # fail before any run
        self.backend = backend
        self.pipelined = bool(pipelined)
        self.queue_size = queue_size
        self.threads = threads
        self.fine_cap = fine_cap
        self.fine_window = fine_window
        self.stats = StreamStats(self._gmacs())
        self._runs: "weakref.WeakSet[Any]" = weakref.WeakSet()

    def run(self, source: Any) -> Iterator[Prediction]:
        """Predictions for ``source``: a Source, any iterable of Frame, or a spec for ``open_source``."""
        gen = self._run(source)
        # weak: a run the caller abandons (break) must stay collectable, so its threads stop on collection
        self._runs.add(gen)
        return gen

    def close(self) -> None:
        """Stop runs that were started and not finished (joins their threads, frees their sessions)."""
        for gen in list(self._runs):
            gen.close()

    def __enter__(self) -> "StreamRuntime":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # internals -----------------------------------------------------------------------------------
    def _run(self, source: Any) -> Iterator[Prediction]:
        stats = self.stats = StreamStats(self._gmacs())
        with contextlib.ExitStack() as stack:
            if isinstance(source, (str, int, Path)):
                from .source import open_source
                source = stack.enter_context(open_source(source))
            sessions = self._activate(stack)
            stages = _LiteEvalStages(self.bundle, sessions, stats, fine_cap=self.fine_cap,
                                     fine_window=self.fine_window)
            pipeline = Pipeline(stages.as_list(), stats, queue_size=self.queue_size,
                                on_source_item=lambda _: stats.add_source_frame(getattr(source, "reconnects", 0)))
            # the last count, also when the source fails without delivering another frame
            stack.callback(lambda: stats.set(reconnects=getattr(source, "reconnects", 0)))
            stats.start()
            results = (pipeline.run_pipelined(source, live=bool(getattr(source, "live", False)))
                       if self.pipelined else pipeline.run_sequential(source))
            stack.callback(results.close)  # joins the stage threads before the sessions are deactivated
            for pred, captured in results:
                pred.latency = time.perf_counter() - captured
                stats.add_prediction(pred.latency)
                yield pred

    def _activate(self, stack: contextlib.ExitStack) -> Dict[str, Any]:
        threads = self.threads if self.threads is not None else (1 if self.pipelined else None)
        options = {} if threads is None else {"threads": threads}
        sessions = {}
        for role in ROLES:
            session = open_session(self.bundle.graph_path(role), self.backend, name=role, **options)
            sessions[role] = stack.enter_context(session)
        return sessions

    def _gmacs(self) -> Dict[str, Optional[float]]:
        return {role: self.bundle.graphs[role].gmacs for role in ROLES if role in self.bundle.graphs}


def _frame_size(bundle: Bundle, role: str) -> int:
    spec = next((t for t in bundle.graph(role).inputs if t.name == "frame"), None)
    if spec is None or len(spec.shape) != 4 or spec.shape[2] != spec.shape[3]:
        raise ManifestError("graph %s of bundle %s has no square 'frame' input" % (role, bundle.root),
                            "LiteEval CNNs take frame [N,3,S,S]", "re-export the bundle")
    return int(spec.shape[-1])


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - float(np.max(logits))
    e = np.exp(z)
    total = float(e.sum())
    return e / total if total > 0 and math.isfinite(total) else np.full_like(e, 1.0 / e.size)
