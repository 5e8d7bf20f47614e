"""The session seam: a caller's factory wraps the registry's sessions (here a recorder of every feed, the shape
calibration will take) and the runtime uses them as its own; the thread hook runs in every worker thread."""
from __future__ import annotations

import contextlib
import threading

import numpy as np
import pytest

from edgevid.backends import Session, session_factory
from edgevid.runtime import StreamRuntime


class Recording(Session):
    """Wraps a session: same I/O, records a copy of every feed, counts the worker threads that entered it."""

    def __init__(self, inner: Session, log: dict, threads: set):
        super().__init__(inner.path, inner.name, precision=inner.precision)
        self.inner, self.log, self.threads = inner, log, threads
        self.backend = inner.backend

    def _activate(self):
        self.inner.activate()
        self.inputs, self.outputs = self.inner.inputs, self.inner.outputs

    def _infer(self, feeds):
        self.log.setdefault(self.name, []).append({k: np.array(v) for k, v in feeds.items()})
        return self.inner.infer(feeds)

    def _deactivate(self):
        self.inner.deactivate()

    def thread_context(self):
        self.threads.add(threading.current_thread().name)
        return contextlib.nullcontext()


@pytest.fixture
def recorder():
    log, threads, made = {}, set(), []
    real = session_factory("ort")

    def factory(bundle, role):
        made.append(Recording(real(bundle, role), log, threads))
        return made[-1]

    return factory, log, threads, made


@pytest.mark.parametrize("pipelined", [True, False])
def test_recorded_feeds_follow_the_runtimes_own_policy(make_bundle, video, recorder, pipelined):
    factory, log, threads, made = recorder
    from edgevid.runtime.source import open_source

    with open_source(str(video)) as src, StreamRuntime(make_bundle("mixed"), sessions=factory,
                                                       pipelined=pipelined) as runtime:
        preds = list(runtime.run(src))
    stats = runtime.stats.to_dict()
    assert len(preds) == 24 and 0 < stats["fine_steps"] < 24  # both branches ran
    # the coarse graphs see every frame, the fine graphs only the frames the gate sent them
    assert len(log["coarse_cnn"]) == len(log["coarse_step"]) == 24
    assert len(log["fine_cnn"]) == len(log["fine_step"]) == stats["fine_steps"]
    fine_frames = [p.frame_index for p in preds if p.path == "fine"]
    assert len(fine_frames) == stats["fine_steps"]
    # carried state: the first step starts from zeros, later ones from a real previous state
    h = [f["h_c_in"] for f in log["coarse_step"]]
    assert not h[0].any() and all(x.any() for x in h[1:])
    # every session was deactivated, and each worker thread entered the sessions' thread context
    assert made and not any(s.active for s in made)
    assert threads == ({"edgevid-preprocess", "edgevid-coarse", "edgevid-chain"} if pipelined
                       else {threading.current_thread().name})
    assert stats["sessions"]["fine_cnn"]["backend"] == "ort"


def test_a_mapping_of_sessions_must_cover_every_role(make_bundle):
    from edgevid.errors import ConfigError

    with pytest.raises(ConfigError, match="no session given for roles coarse_step, fine_cnn, fine_step"):
        StreamRuntime(make_bundle("mixed"), sessions={"coarse_cnn": object()})
