"""StreamRuntime on the committed tiny LiteEval bundles through ONNX Runtime, checked against the numpy reference of
tiny_liteeval; the session lifecycle on numpy sessions (tests/helpers/numpy_session.py)."""
from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

from edgevid.errors import ConfigError, FrameError, SessionError, SourceError
from edgevid.runtime.source import Frame, open_source
from edgevid.runtime.stream import StreamRuntime
from tests.helpers import tiny_liteeval as tiny
from tests.helpers.numpy_session import CountingLiteEval, numpy_factory, numpy_sessions

pytest.importorskip("onnxruntime")
pytest.importorskip("cv2")


def stage_threads():
    return [t for t in threading.enumerate() if t.name.startswith("edgevid-")]


def run(bundle, source, **options):
    rt = StreamRuntime(bundle, **options)
    preds = list(rt.run(source))
    return preds, rt.stats.to_dict()


def file_frames(video):
    with open_source(str(video)) as src:
        return list(src)


def reference(bundle, frames, gate, reset_at=(), **policy):
    """The reference on the same preprocessed inputs the runtime sees."""
    from edgevid.preprocess import Preprocessor

    pre = Preprocessor(bundle.preprocess)
    inputs = [{s: np.array(a) for s, a in pre(f.image).items()} for f in frames]
    return tiny.Reference(gate, **policy).run(inputs, reset_at=reset_at)


def assert_matches(preds, ref):
    assert [p.path for p in preds] == [path for _, path in ref]
    for p, (logits, _) in zip(preds, ref):
        np.testing.assert_allclose(p.logits, logits, atol=1e-4, rtol=1e-4)
        assert p.class_index == int(np.argmax(logits))


def test_sequential_and_pipelined_give_identical_predictions(make_bundle, video):
    bundle = make_bundle("mixed")
    with open_source(str(video)) as src:
        seq, _ = run(bundle, src, pipelined=False)
    with open_source(str(video)) as src:
        pip, _ = run(bundle, src, pipelined=True)
    assert len(seq) == len(pip) == 24
    strip = [{k: v for k, v in p.to_dict().items() if k != "latency"} for p in seq]
    assert strip == [{k: v for k, v in p.to_dict().items() if k != "latency"} for p in pip]
    for a, b in zip(seq, pip):
        np.testing.assert_array_equal(a.logits, b.logits)
    assert {p.path for p in seq} == {"fine", "coarse"}  # the mixed gate really takes both branches
    json.dumps([p.to_dict() for p in pip])


@pytest.mark.parametrize("gate", ["fine", "coarse", "tie", "mixed"])
def test_gate_branches_match_the_reference(make_bundle, video, gate):
    bundle = make_bundle(gate)
    frames = file_frames(video)
    preds, stats = run(bundle, frames)
    ref = reference(bundle, frames, gate)
    assert_matches(preds, ref)
    expected = {"fine": {"fine"}, "coarse": {"coarse"}, "tie": {"fine"}, "mixed": {"fine", "coarse"}}[gate]
    assert {p.path for p in preds} == expected  # ties go to channel 0 = fine
    assert all(p.label == tiny.LABELS[p.class_index] for p in preds)
    assert all(0.0 < p.score <= 1.0 for p in preds)


@pytest.mark.parametrize("pipelined", [False, True])
def test_the_fine_input_is_made_on_fine_steps_only_in_the_chain(make_bundle, video, monkeypatch, pipelined):
    from edgevid.preprocess import Preprocessor

    made, make = [], Preprocessor.input

    def counting(self, crop, size):
        made.append((size, threading.current_thread().name))
        return make(self, crop, size)

    monkeypatch.setattr(Preprocessor, "input", counting)
    bundle = make_bundle("mixed")
    frames = file_frames(video)
    preds, stats = run(bundle, frames, pipelined=pipelined)
    fine = [thread for size, thread in made if size == 224]
    assert 0 < len(fine) == stats["fine_steps"] == sum(p.path == "fine" for p in preds) < len(preds)
    assert sum(size == 112 for size, _ in made) == len(preds)
    if pipelined:
        assert set(fine) == {"edgevid-chain"}
    assert_matches(preds, reference(bundle, frames, "mixed"))  # the same inputs as made eagerly


def test_fine_cap_sliding_window(make_bundle, video):
    bundle = make_bundle("fine")
    frames = file_frames(video)
    preds, stats = run(bundle, frames, fine_cap=2, fine_window=5)
    assert_matches(preds, reference(bundle, frames, "fine", fine_cap=2, fine_window=5))
    fine = [p.path == "fine" for p in preds]
    assert all(sum(fine[i:i + 5]) <= 2 for i in range(len(fine)))
    assert stats["fine_capped"] == len(fine) - sum(fine)  # the gate always chose fine: every skip was the cap
    assert stats["fine_steps"] == sum(fine) == 10  # 2 per 5 steps over 24 steps: 0,1,5,6,10,11,15,16,20,21


def test_fine_cap_per_segment_from_the_bundle_policy(make_bundle, video):
    bundle = make_bundle("fine", fine_cap=3, max_steps=10)
    frames = file_frames(video)
    preds, stats = run(bundle, frames)
    assert [i for i, p in enumerate(preds) if p.path == "fine"] == [0, 1, 2, 10, 11, 12, 20, 21, 22]
    assert_matches(preds, reference(bundle, frames, "fine", fine_cap=3, max_steps=10))


def test_state_resets_every_max_steps(make_bundle, video):
    frames = file_frames(video)
    short, stats = run(make_bundle("mixed", max_steps=5), frames)
    long, _ = run(make_bundle("mixed"), frames)
    assert_matches(short, reference(make_bundle("mixed"), frames, "mixed", max_steps=5))
    assert stats["resets"] == (len(frames) - 1) // 5
    assert not all(np.allclose(a.logits, b.logits) for a, b in zip(short, long))


def test_state_resets_after_a_timestamp_gap(make_bundle, video):
    frames = file_frames(video)
    jumped = [Frame(f.index, f.timestamp + (60.0 if f.index >= 10 else 0.0), f.image, f.captured) for f in frames]
    preds, stats = run(make_bundle("mixed", max_gap_s=5.0), jumped)
    assert stats["resets"] == 1
    assert_matches(preds, reference(make_bundle("mixed"), frames, "mixed", reset_at=(10,)))


def test_stats_are_consistent(make_bundle, video):
    with open_source(str(video)) as src:
        preds, stats = run(make_bundle("mixed"), src)
    n, fine = len(preds), sum(p.path == "fine" for p in preds)
    assert stats["frames"] == stats["steps"] == stats["source_frames"] == n == 24
    assert stats["fine_steps"] == fine and stats["fine_rate"] == pytest.approx(fine / n)
    g = tiny.GMACS
    per_frame = g["coarse_cnn"] + g["coarse_step"] + fine / n * (g["fine_cnn"] + g["fine_step"])
    assert stats["gmacs_per_frame"] == pytest.approx(per_frame)
    assert stats["gmacs_always_fine"] == pytest.approx(g["fine_cnn"] + g["fine_step"])
    assert stats["gmacs_saved"] == pytest.approx(1 - per_frame / (g["fine_cnn"] + g["fine_step"]))
    stages = stats["stages_ms"]
    assert stages["coarse_step"]["count"] == n and stages["fine_cnn"]["count"] == fine
    assert stages["fine_step"]["count"] == fine
    for name in ("capture", "preprocess", "coarse", "chain", "coarse_step"):
        s = stages[name]
        assert 0 <= s["p50"] <= s["p90"] <= s["p99"]
    lat = stats["latency_ms"]
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"]
    assert all(p.latency > 0 for p in preds)
    assert stats["fps"] > 0 and stats["dropped"] == 0 and stats["reconnects"] == 0
    json.dumps(stats)


class LiveFrames:
    """A fake camera: frames as fast as it can, ``live`` so the runtime drops rather than blocks."""

    live = True

    def __init__(self, frames, repeat):
        self.frames, self.repeat = frames, repeat

    def __iter__(self):
        for i in range(self.repeat):
            f = self.frames[i % len(self.frames)]
            yield Frame(i, i / 30.0, f.image, time.perf_counter())


def test_live_source_drops_oldest_when_the_chain_lags(make_bundle, video, monkeypatch):
    from edgevid.runtime import policies

    step = policies.GatedPolicy.step

    def slow_step(self, *args, **kwargs):
        time.sleep(0.01)
        return step(self, *args, **kwargs)

    monkeypatch.setattr(policies.GatedPolicy, "step", slow_step)
    preds, stats = run(make_bundle("mixed"), LiveFrames(file_frames(video), 120), queue_size=2)
    assert stats["dropped"] > 0
    assert len(preds) + stats["dropped"] == stats["source_frames"] == 120
    idx = [p.frame_index for p in preds]
    assert idx == sorted(idx) and idx[-1] == 119
    assert stats["steps"] == len(preds)
    assert not stage_threads()


def test_file_source_never_drops_even_when_slow(make_bundle, video, monkeypatch):
    from edgevid.runtime import policies

    step = policies.GatedPolicy.step
    monkeypatch.setattr(policies.GatedPolicy, "step", lambda self, *a: (time.sleep(0.005), step(self, *a))[1])
    with open_source(str(video)) as src:
        preds, stats = run(make_bundle("mixed"), src, queue_size=1)
    assert [p.frame_index for p in preds] == list(range(24)) and stats["dropped"] == 0


# the session lifecycle: the runtime activates the sessions it is given and always deactivates them -------------
def failing(role):
    def infer(feeds):
        raise SessionError("injected failure in %s" % role)
    return infer


def all_freed(sessions):
    return sessions and all(s.activations == s.deactivations == 1 and not s.active for s in sessions)


@pytest.mark.parametrize("pipelined", [True, False])
@pytest.mark.parametrize("role", ["coarse_cnn", "fine_step"])
def test_stage_exception_propagates_threads_end_sessions_freed(make_bundle, video, pipelined, role):
    made = []
    fns = dict(CountingLiteEval().fns(), **{role: failing(role)})
    with pytest.raises(SessionError, match="injected failure in " + role):
        run(make_bundle("fine"), file_frames(video), pipelined=pipelined, sessions=numpy_factory(fns, made))
    assert not stage_threads()
    assert {s.name for s in made} == {"coarse_cnn", "fine_cnn", "coarse_step", "fine_step"}
    assert all_freed(made)


def test_given_sessions_are_activated_for_the_run_and_freed_after(make_bundle, video):
    graphs = CountingLiteEval(wants_fine=lambda call: call % 3 == 0)
    bundle = make_bundle("mixed")
    sessions = numpy_sessions(bundle, graphs.fns())
    assert not any(s.active for s in sessions.values())
    rt = StreamRuntime(bundle, sessions=sessions)
    seen_active = []
    for _ in rt.run(file_frames(video)):
        seen_active.append(all(s.active for s in sessions.values()))
    assert len(seen_active) == 24 and all(seen_active)
    assert all_freed(list(sessions.values()))
    # the numpy graphs ran: the gate's schedule decided the paths, the state counted the steps
    stats = rt.stats.to_dict()
    assert stats["fine_steps"] == 8 == graphs.fine_cnn_calls and sessions["coarse_step"].calls == 24


def test_early_break_ends_threads_on_an_endless_source(make_bundle, video):
    made = []
    rt = StreamRuntime(make_bundle("mixed"), sessions=numpy_factory(CountingLiteEval().fns(), made))
    with open_source(str(video), loop=True) as src:  # a looped file never ends on its own
        for i, pred in enumerate(rt.run(src)):
            last = pred.frame_index
            if i == 30:
                break
        assert last == 30  # frames go on past the end of the 24-frame file
    assert not stage_threads()
    assert all_freed(made)


def test_runtime_close_stops_an_unfinished_run(make_bundle, video):
    rt = StreamRuntime(make_bundle("mixed"))
    with open_source(str(video), loop=True) as src:
        gen = rt.run(src)
        next(gen)
        assert stage_threads()
        rt.close()
    assert not stage_threads()


@pytest.mark.parametrize("pipelined", [True, False])
@pytest.mark.parametrize("shape", [(72, 96, 4), (72, 96), (72, 96, 1)])
def test_wrong_frame_shape_is_a_frame_error(make_bundle, video, pipelined, shape):
    good = file_frames(video)[:3]
    bad = good + [Frame(3, 0.3, np.zeros(shape, np.uint8), time.perf_counter())]
    seen = []
    with pytest.raises(FrameError, match="shape"):
        for p in StreamRuntime(make_bundle("mixed"), pipelined=pipelined).run(bad):
            seen.append(p)
    assert len(seen) <= 3
    assert not stage_threads()


def test_a_live_source_that_dies_raises_source_error_with_reconnects_counted(make_bundle, video):
    from edgevid.runtime.source import CaptureSource

    images = [f.image for f in file_frames(video)[:4]]

    class Cap:
        def __init__(self, n):
            self.left = n

        def isOpened(self):
            return True

        def read(self):
            self.left -= 1
            return (True, images[0]) if self.left >= 0 else (False, None)

        def get(self, prop):
            return 0.0

        def release(self):
            pass

    caps = iter([Cap(4), Cap(2)] + [Cap(0)] * 10)
    source = CaptureSource(lambda: next(caps), "fake camera", live=True, retries=3, backoff_s=0.001)
    rt = StreamRuntime(make_bundle("mixed"), queue_size=8)  # room for all: nothing is dropped
    preds = []
    with pytest.raises(SourceError, match="stopped delivering"):
        for p in rt.run(source):
            preds.append(p)
    assert len(preds) == 6  # frames read before the failure still come out, then the error
    stats = rt.stats.to_dict()
    assert stats["reconnects"] == 4 and stats["dropped"] == 0  # one that worked, then 3 failed retries
    assert not stage_threads()


def test_runtime_accepts_a_spec_and_a_bundle_path(make_bundle, video):
    bundle = make_bundle("coarse")
    preds, stats = run(bundle.root, str(video))
    assert len(preds) == 24 and {p.path for p in preds} == {"coarse"}
    assert stats["gmacs_saved"] == pytest.approx(1 - (0.08 + 0.002) / (7.8 + 0.04))


def test_runtime_refuses_bad_settings(make_bundle):
    from edgevid.errors import ConfigError, ManifestError

    with pytest.raises(ConfigError):
        StreamRuntime(make_bundle("mixed"), queue_size=0)
    with pytest.raises(ConfigError, match="fine_cap"):
        StreamRuntime(make_bundle("mixed"), fine_cap=-1)
    with pytest.raises(ConfigError, match="max_steps"):
        StreamRuntime(make_bundle("mixed", max_steps=0))
    with pytest.raises(ManifestError, match="unknown model family 'nosuch'"):
        bundle = make_bundle("mixed")
        bundle.family = "nosuch"
        StreamRuntime(bundle)


@pytest.mark.parametrize("pipelined", [True, False])
def test_a_bad_frame_of_a_live_stream_is_skipped_and_counted(make_bundle, video, pipelined, caplog):
    frames = file_frames(video)
    bad = Frame(frames[5].index, frames[5].timestamp, np.zeros((48, 64), np.uint8), frames[5].captured)  # grey
    live = LiveFrames(frames[:5] + [bad] + frames[6:], len(frames))
    with caplog.at_level("WARNING", logger="edgevid"):  # queues long enough that a live source drops nothing
        preds, stats = run(make_bundle("mixed"), live, pipelined=pipelined, queue_size=64)
    assert stats["dropped"] == 0 and stats["bad_frames"] == 1 and len(preds) == len(frames) - 1
    assert 5 not in [p.frame_index for p in preds]
    assert "skipping a frame the preprocess stage refused" in caplog.text
    with pytest.raises(FrameError, match="shape"):  # asked to stop, the same stream ends at the bad frame
        run(make_bundle("mixed"), live, pipelined=pipelined, on_bad_frame="stop", queue_size=64)
    with pytest.raises(FrameError, match="shape"):  # a file's run ends there by default
        run(make_bundle("mixed"), list(live.frames), pipelined=pipelined)
    with pytest.raises(ConfigError, match="on_bad_frame"):
        run(make_bundle("mixed"), live, on_bad_frame="ignore")
