"""SlowFast streaming (runtime/clip.py) on the committed tiny clip bundle, checked against the numpy reference
of tiny_clip (tests/test_fixtures.py ties that reference to the torch module)."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from tests.helpers import tiny_clip as tc
from edgevid.errors import ConfigError, ManifestError
from edgevid.runtime.clip import ClipPolicy, ClipStages
from edgevid.runtime.clip_window import ClipWindow
from edgevid.runtime.pipeline import Pipeline
from edgevid.runtime.stats import StreamStats
from edgevid.runtime.stream import StreamRuntime


def run(bundle, frames, **options):
    rt = StreamRuntime(bundle, **options)
    preds = list(rt.run(frames))
    return preds, rt.stats.to_dict()


def preprocessed(bundle, frames):
    from edgevid.preprocess import Preprocessor

    pre = Preprocessor(bundle.preprocess)
    return [np.array(pre(f.image)[tc.S][0]) for f in frames]


def expected(bundle, frames, every, smooth=1, pad="none"):
    """(frame index, logits, path) per predicted frame, one slot per frame, from the reference."""
    slots = preprocessed(bundle, frames)
    plan = tc.schedule(len(slots), every, pad)
    runs = [i for i, run in enumerate(plan) if run]
    logits = dict(zip(runs, tc.clip_logits([tc.windows_at(slots, i, pad) for i in runs])))
    out, probs, current = [], [], None
    for i, run in enumerate(plan):
        if run is None:
            continue
        if run:
            if smooth == 1:
                current = logits[i]
            else:
                z = np.exp(logits[i] - logits[i].max())
                probs = (probs + [z / z.sum()])[-smooth:]
                current = np.log(np.mean(probs, axis=0))
        out.append((frames[i].index, current, "clip" if run else "held"))
    return out


def assert_matches(preds, ref):
    assert [(p.frame_index, p.path) for p in preds] == [(i, path) for i, _, path in ref]
    for p, (_, logits, _) in zip(preds, ref):
        np.testing.assert_allclose(p.logits, logits, atol=1e-4, rtol=1e-4)
        assert p.class_index == int(np.argmax(logits)) and p.label == tc.LABELS[p.class_index]


def ten_fps(n):
    return tc.frames([i / 10.0 for i in range(n)])


# --- predictions against the reference -----------------------------------------------------------
def test_predictions_match_the_reference_after_warm_up(clip_bundle):
    bundle, frames = clip_bundle(), ten_fps(20)
    preds, stats = run(bundle, frames)
    assert preds[0].frame_index == tc.T - 1  # nothing until the window is full
    assert_matches(preds, expected(bundle, frames, every=2))
    assert stats["clips"] == 7 and stats["held"] == 6 and stats["warmup_frames"] == 7
    assert stats["gmacs_per_frame"] == pytest.approx(7 * tc.GMACS / 20)
    assert stats["stages_ms"]["clip"]["count"] == 7


@pytest.mark.parametrize("every,smooth", [(1, 1), (3, 1), (1, 3), (2, 2)])
def test_every_and_smooth(clip_bundle, every, smooth):
    bundle, frames = clip_bundle(), ten_fps(16)
    preds, stats = run(bundle, frames, pipelined=False, every=every, smooth=smooth)
    assert_matches(preds, expected(bundle, frames, every, smooth))
    assert stats["clips"] == len(range(tc.T - 1, 16, every))
    if smooth > 1:
        p = preds[-1]
        z = np.exp(p.logits - p.logits.max())
        assert p.score == pytest.approx(float(np.max(z / z.sum())), rel=1e-5)


def test_pad_repeat_predicts_from_the_first_frame(clip_bundle):
    bundle, frames = clip_bundle(), ten_fps(12)
    preds, stats = run(bundle, frames, pad="repeat", every=4)
    assert preds[0].frame_index == 0 and preds[0].path == "clip" and len(preds) == 12
    assert_matches(preds, expected(bundle, frames, every=4, pad="repeat"))
    assert stats.get("warmup_frames", 0) == 0


def test_sequential_and_pipelined_are_identical(clip_bundle):
    bundle, frames = clip_bundle(), ten_fps(24)
    seq, _ = run(bundle, frames, pipelined=False, smooth=2)
    pip, _ = run(bundle, frames, pipelined=True, smooth=2, queue_size=1)
    strip = [{k: v for k, v in p.to_dict().items() if k != "latency"} for p in seq]
    assert strip == [{k: v for k, v in p.to_dict().items() if k != "latency"} for p in pip]
    for a, b in zip(seq, pip):
        np.testing.assert_array_equal(a.logits, b.logits)


# --- exact window contents through the stages ----------------------------------------------------
class Recorder:
    """A fake clip session: records which frame (by grey level) sits at each time position."""

    def __init__(self):
        self.windows = []

    def infer(self, feeds):
        clip = feeds["clip"]
        assert clip.shape == (1, 3, tc.T, tc.S, tc.S)
        grey = clip[0, 0, :, 0, 0] * 0.225 + 0.45  # undo normalisation: grey/255
        self.windows.append([int(round(g * 255)) // 2 for g in grey])  # frame id = grey // 2
        return {"logits": np.zeros((1, tc.C), np.float32)}


def grey_frames(times):
    """Frame i is a flat grey image of level 2·i, so the window's pixel values name its frames."""
    ids = {t: i for i, t in enumerate(times)}
    return tc.frames(times, image=lambda t: np.full((40, 48, 3), 2 * ids[t], np.uint8))


def stage_run(bundle, frames, **options):
    stats = StreamStats()
    session = Recorder()
    stages = ClipStages(bundle, {"clip": session}, stats, ClipStages.check(bundle, options))
    preds = [p for p, _ in Pipeline(stages.as_list(), stats).run_sequential(frames)]
    return preds, session.windows, stats.to_dict()


def test_windows_hold_the_last_frames_in_time_order(clip_bundle):
    preds, windows, _ = stage_run(clip_bundle(), grey_frames([i / 10.0 for i in range(14)]), every=3)
    assert windows == [list(range(k - tc.T + 1, k + 1)) for k in (7, 10, 13)]
    assert [p.path for p in preds] == ["clip", "held", "held"] * 2 + ["clip"]


def test_30_and_60_fps_cameras_feed_the_same_clips(clip_bundle):
    bundle = clip_bundle(step_fps=15.0, every=2)
    a, stats_a = run(bundle, tc.frames([i / 30.0 for i in range(60)]))
    b, stats_b = run(bundle, tc.frames([i / 60.0 for i in range(120)]))
    assert len(a) == len(b) == 30 - (tc.T - 1)
    assert [(round(p.timestamp, 6), p.path) for p in a] == [(round(p.timestamp, 6), p.path) for p in b]
    for x, y in zip(a, b):
        np.testing.assert_allclose(x.logits, y.logits, atol=1e-5)
    assert stats_a["unsampled_frames"] == 30 and stats_b["unsampled_frames"] == 90
    assert "repeated_slots" not in stats_a and "repeated_slots" not in stats_b
    # and they equal a 15 fps source (one slot per frame) checked against the reference
    assert_matches(a, [(i * 2, logits, path) for i, logits, path in expected(bundle, tc.frames(
        [i / 15.0 for i in range(30)]), every=2)])


def test_slower_source_repeats_the_latest_frame_into_missed_slots(clip_bundle, caplog):
    # 10 fps source, model spacing 15 fps: slots at 0, 1/15, 2/15, …; every even frame after 0 skips a slot
    times = [i / 10.0 for i in range(12)]
    with caplog.at_level(logging.WARNING, logger="edgevid.runtime.clip"):
        preds, windows, stats = stage_run(clip_bundle(step_fps=15.0), grey_frames(times), every=1)
    slots = [0]
    for i in range(1, 12):
        slots += [i - 1, i] if i % 2 == 0 else [i]  # the missed slot holds the frame before it
    assert stats["repeated_slots"] == 5
    assert windows[0] == slots[:tc.T] and windows[-1] == slots[-tc.T:]
    assert [p.frame_index for p in preds] == list(range(5, 12))  # frame 5 fills slot 8 = T
    assert len([r for r in caplog.records if "slower than the model" in r.getMessage()]) == 1


def test_gap_longer_than_max_gap_resets_the_window(clip_bundle):
    times = [i / 10.0 for i in range(10)] + [5.0 + i / 10.0 for i in range(10)]
    bundle = clip_bundle(max_gap_s=0.5)
    preds, windows, stats = stage_run(bundle, grey_frames(times), every=4, smooth=2)
    assert [p.frame_index for p in preds] == [7, 8, 9, 17, 18, 19]  # warm-up again after the gap
    assert windows == [list(range(0, 8)), list(range(10, 18))]  # nothing from before the gap
    assert stats["resets"] == 1 and stats["warmup_frames"] == 14
    assert preds[3].path == "clip"
    # smoothing restarted: the first clip after the gap is reported alone (all logits 0 → uniform)
    np.testing.assert_allclose(np.exp(preds[3].logits), np.full(tc.C, 1.0 / tc.C), rtol=1e-5)


def test_default_max_gap_is_the_window_span(clip_bundle):
    # T=8 at 10 fps: 0.8 s. A 0.7 s gap is filled by repeats, a 0.9 s gap resets
    times = [i / 10.0 for i in range(8)] + [1.4, 1.5, 2.4]
    preds, windows, stats = stage_run(clip_bundle(), grey_frames(times), every=1)
    assert stats["repeated_slots"] == 6 and stats["resets"] == 1
    assert windows[1] == [7] * 7 + [8] and windows[2] == [7] * 6 + [8, 9]
    assert [p.frame_index for p in preds] == [7, 8, 9]


def test_clock_going_backwards_resets(clip_bundle):
    times = [i / 10.0 for i in range(9)] + [0.0 + i / 10.0 for i in range(8)]
    preds, _, stats = stage_run(clip_bundle(), grey_frames(times))
    assert stats["resets"] == 1 and [p.frame_index for p in preds] == [7, 8, 16]


# --- the ring buffer on its own ------------------------------------------------------------------
def test_clip_window_ring_order_and_repeat():
    w = ClipWindow(4, 2)
    for k in range(6):
        w.push(np.full((1, 3, 2, 2), k, np.float32))
    assert w.full and list(w.assemble()[0, 0, :, 0, 0]) == [2, 3, 4, 5]
    w.repeat(2)
    assert list(w.assemble()[0, 1, :, 1, 1]) == [4, 5, 5, 5]
    w.fill(np.full((3, 2, 2), 9, np.float32))
    out = np.empty((1, 3, 4, 2, 2), np.float32)
    assert w.assemble(out) is out and (out == 9).all()


def test_policy_sampler_keeps_the_grid_at_non_integer_rate_ratios():
    policy = ClipPolicy(8, 2, step_fps=12.0)
    kept = [t for t in (i / 25.0 for i in range(250)) if policy.sample(t)[0]]
    assert len(kept) == 120 and policy.repeated_slots == 0  # 10 s at 12 fps from a 25 fps camera


# --- contract and option errors ------------------------------------------------------------------
def test_graph_clip_length_must_match_the_policy(clip_bundle):
    with pytest.raises(ManifestError, match="frames=9"):
        StreamRuntime(clip_bundle(frames=9))
    bundle = clip_bundle()
    bundle.preprocess = type(bundle.preprocess)(crop=tc.S, sizes=(16,))
    with pytest.raises(ManifestError, match="needs 32"):
        StreamRuntime(bundle)
    bundle = clip_bundle()
    bundle.labels = ["a", "b"]
    with pytest.raises(ManifestError, match="3 classes and 2 labels"):
        StreamRuntime(bundle)


@pytest.mark.parametrize("options,match", [
    ({"every": 0}, "every"), ({"smooth": -1}, "smooth"), ({"smooth": 1.5}, "smooth"),
    ({"pad": "zeros"}, "pad"), ({"fine_cap": 2}, "fine_cap"),
])
def test_bad_options_are_config_errors(clip_bundle, options, match):
    with pytest.raises(ConfigError, match=match):
        StreamRuntime(clip_bundle(), **options)


def test_bad_bundle_policy_is_a_config_error(clip_bundle):
    with pytest.raises(ConfigError, match="step_fps"):
        StreamRuntime(clip_bundle(step_fps=0))
    with pytest.raises(ConfigError, match="kind"):
        StreamRuntime(clip_bundle(kind="gated"))
    with pytest.raises(ConfigError, match="shorter than one slot"):
        ClipPolicy(8, 2, step_fps=10.0, max_gap_s=0.05)
