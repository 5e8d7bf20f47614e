"""PreRNN streaming (runtime/recurrent.py) on the committed tiny bundles through ONNX Runtime, against the numpy
reference of tiny_prernn (tests/test_fixtures.py ties that reference to the torch modules)."""
from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

from tests.helpers import tiny_prernn as tiny
from edgevid.errors import ConfigError, ManifestError
from edgevid.spec import TensorSpec

pytest.importorskip("onnxruntime")
pytest.importorskip("cv2")

from edgevid.backends import open_session  # noqa: E402
from edgevid.runtime.recurrent import RecurrentPolicy, RecurrentStages, SceneCut  # noqa: E402
from edgevid.runtime.stream import StreamRuntime  # noqa: E402

ATOL = 1e-5


def inputs_of(bundle, frames):
    from edgevid.preprocess import Preprocessor

    pre = Preprocessor(bundle.preprocess)
    return [np.array(pre(f.image)[224]) for f in frames]


def run(bundle, frames, **options):
    rt = StreamRuntime(bundle, "ort", **options)
    preds = list(rt.run(frames))
    return preds, rt.stats.to_dict()


def max_err(preds, ref):
    assert len(preds) == len(ref)
    return max(float(np.abs(p.logits - r["logits"]).max()) for p, r in zip(preds, ref))


# parity --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cell", tiny.CELLS)
def test_predictions_match_the_reference_over_300_steps(prernn, cell):
    bundle = prernn(cell)
    frames = tiny.scene_frames(300)
    preds, stats = run(bundle, frames)
    ref = tiny.Reference(cell).run(inputs_of(bundle, frames))
    assert max_err(preds, ref) < ATOL
    assert [p.class_index for p in preds] == [int(np.argmax(r["logits"])) for r in ref]
    assert {p.path for p in preds} == {"step"} and [p.frame_index for p in preds] == list(range(300))
    assert stats["steps"] == 300 and stats["resets"] == 0
    # the state really carries: the last steps differ from what a fresh state would give
    fresh = tiny.Reference(cell).run(inputs_of(bundle, frames[-1:]))
    assert np.abs(fresh[0]["logits"] - ref[-1]["logits"]).max() > 1e-3


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_carried_state_matches_the_reference_every_step(prernn, cell):
    """RecurrentPolicy on an ORT step session, fed the reference backbone's drive: h (and c) every step."""
    bundle = prernn(cell)
    frames = tiny.scene_frames(300)
    reference = tiny.Reference(cell)
    ref = reference.run(inputs_of(bundle, frames))
    drives = [reference.backbone(x) for x in inputs_of(bundle, frames)]
    worst = 0.0
    with open_session(bundle.graph_path("step"), "ort", name="step") as session:
        policy = RecurrentPolicy(bundle, session)
        for t, (drive, r) in enumerate(zip(drives, ref)):
            logits = policy.step(drive, timestamp=t / 10.0)
            worst = max(worst, float(np.abs(logits[0] - r["logits"]).max()))
            for state in ("h", "c") if cell == "lstm" else ("h",):
                worst = max(worst, float(np.abs(policy.state[state] - r[state]).max()))
        assert set(policy.state) == ({"h", "c"} if cell == "lstm" else {"h"})
    assert worst < ATOL


def test_sequential_and_pipelined_are_identical(prernn):
    bundle = prernn("gru", scene_cut=0.2, max_steps=40)
    frames = tiny.scene_frames(120, cut_at=(70,))
    seq, seq_stats = run(bundle, frames, pipelined=False)
    pip, pip_stats = run(bundle, frames, pipelined=True)
    assert [p.to_dict() for p in seq] != [] and len(seq) == len(pip) == 120
    strip = [{k: v for k, v in p.to_dict().items() if k != "latency"} for p in seq]
    assert strip == [{k: v for k, v in p.to_dict().items() if k != "latency"} for p in pip]
    for a, b in zip(seq, pip):
        np.testing.assert_array_equal(a.logits, b.logits)
    assert seq_stats["resets_by_cause"] == pip_stats["resets_by_cause"] == {"max_steps": 2, "scene_cut": 1}


# resets --------------------------------------------------------------------------------------------
def test_reset_every_n_steps(prernn):
    bundle = prernn("lstm")
    frames = tiny.scene_frames(130)
    preds, stats = run(bundle, frames, max_steps=50)
    ref = tiny.Reference("lstm").run(inputs_of(bundle, frames), reset_at=(50, 100))
    assert max_err(preds, ref) < ATOL
    assert stats["resets"] == 2 and stats["resets_by_cause"] == {"max_steps": 2}


def test_reset_on_a_timestamp_gap(prernn):
    bundle = prernn("gru", max_gap_s=1.0)
    frames = tiny.scene_frames(100, gaps={60: 5.0})
    preds, stats = run(bundle, frames)
    ref = tiny.Reference("gru").run(inputs_of(bundle, frames), reset_at=(60,))
    assert max_err(preds, ref) < ATOL
    assert stats["resets_by_cause"] == {"gap": 1}
    # without the gap reset the stream would have gone on differently from frame 60
    carried = tiny.Reference("gru").run(inputs_of(bundle, frames))
    assert np.abs(carried[60]["logits"] - ref[60]["logits"]).max() > 1e-3


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_reset_on_a_scene_cut_exactly_there(prernn, cell):
    bundle = prernn(cell)
    frames = tiny.scene_frames(120, cut_at=(45, 90))
    inputs = inputs_of(bundle, frames)
    preds, stats = run(bundle, frames, scene_cut=0.2)
    ref = tiny.Reference(cell).run(inputs, reset_at=(45, 90))
    assert max_err(preds, ref) < ATOL
    assert stats["resets"] == 2 and stats["resets_by_cause"] == {"scene_cut": 2}
    # no threshold, no scene-cut reset: the state carries across the cut
    plain, plain_stats = run(bundle, frames)
    assert max_err(plain, tiny.Reference(cell).run(inputs)) < ATOL and plain_stats["resets"] == 0
    assert np.abs(plain[45].logits - preds[45].logits).max() > 1e-3


def test_scene_cut_score():
    cut = SceneCut()
    frames = tiny.scene_frames(30, cut_at=(20,))
    scores = [cut(f.image) for f in frames]
    assert scores[0] == 0.0
    assert max(scores[1:20] + scores[21:]) < 0.05 < 0.3 < scores[20] <= 1.0
    big, small = SceneCut(), SceneCut()
    for image in (np.zeros((1080, 1920, 3), np.uint8), np.full((1080, 1920, 3), 255, np.uint8)):
        score = big(image)
    assert score == pytest.approx(1.0, abs=1e-3)
    small(np.zeros((20, 18, 3), np.uint8))
    assert small(np.full((20, 18, 3), 51, np.uint8)) == pytest.approx(0.2, abs=1e-3)


def test_explicit_reset_request_at_the_next_step(prernn):
    bundle = prernn("lstm")
    frames = tiny.scene_frames(80)
    rt = StreamRuntime(bundle, "ort", pipelined=False)
    preds = []
    for pred in rt.run(frames):
        preds.append(pred)
        if pred.frame_index == 30:
            rt.request_reset()  # sequential: the next frame through the step is 31
    ref = tiny.Reference("lstm").run(inputs_of(bundle, frames), reset_at=(31,))
    assert max_err(preds, ref) < ATOL
    assert rt.stats.to_dict()["resets_by_cause"] == {"request": 1}


def test_reset_request_on_a_liteeval_stream_is_a_config_error(make_bundle):
    with pytest.raises(ConfigError, match="no explicit state reset"):
        StreamRuntime(make_bundle("mixed"), "ort").request_reset()


def test_one_reset_per_step_and_none_at_the_first(prernn):
    """A scene cut and a gap on the same frame reset once (counted as the gap); a cut on frame 0 is free."""
    bundle = prernn("vrnn", max_gap_s=1.0)
    frames = tiny.scene_frames(60, cut_at=(0, 30), gaps={30: 3.0})
    preds, stats = run(bundle, frames, scene_cut=0.2)
    assert max_err(preds, tiny.Reference("vrnn").run(inputs_of(bundle, frames), reset_at=(30,))) < ATOL
    assert stats["resets_by_cause"] == {"gap": 1}


# the pipeline ------------------------------------------------------------------------------------
def test_backbone_runs_ahead_of_the_serial_step(prernn, monkeypatch):
    """With a slow step, the backbone of later frames finishes while earlier frames are still in the step;
    the step itself never overlaps and takes frames in order."""
    events, lock = [], threading.Lock()
    cnn, rnn = RecurrentStages.cnn, RecurrentStages.rnn

    def timed(fn, name):
        def wrapper(self, work):
            with lock:
                events.append((name, "start", work.frame.index, time.perf_counter()))
            if name == "rnn":
                time.sleep(0.02)  # a step slower than the backbone
            out = fn(self, work)
            with lock:
                events.append((name, "end", work.frame.index, time.perf_counter()))
            return out
        return wrapper

    monkeypatch.setattr(RecurrentStages, "cnn", timed(cnn, "cnn"))
    monkeypatch.setattr(RecurrentStages, "rnn", timed(rnn, "rnn"))
    bundle = prernn("lstm")
    frames = tiny.scene_frames(30)
    preds, stats = run(bundle, frames, queue_size=4)
    assert [p.frame_index for p in preds] == list(range(30))
    cnn_end = {i: t for name, kind, i, t in events if name == "cnn" and kind == "end"}
    rnn_start = {i: t for name, kind, i, t in events if name == "rnn" and kind == "start"}
    ahead = sum(cnn_end[i + 1] < rnn_start[i] for i in range(29))
    assert ahead >= 20  # the backbone had frame i+1 done before the step even began frame i
    rnn_events = [(kind, i) for name, kind, i, _ in events if name == "rnn"]
    assert rnn_events == [(kind, i) for i in range(30) for kind in ("start", "end")]  # serial, in order
    assert stats["stages_ms"]["backbone"]["count"] == stats["stages_ms"]["step"]["count"] == 30
    assert {"preprocess", "cnn", "rnn"} <= set(stats["stages_ms"])


def test_gmacs_per_frame(prernn):
    _, stats = run(prernn("gru"), tiny.scene_frames(10))
    assert stats["gmacs_by_graph"] == tiny.GMACS
    assert stats["gmacs_per_frame"] == pytest.approx(sum(tiny.GMACS.values()))
    json.dumps(stats)


# bad bundles and options -------------------------------------------------------------------------
def _drop(specs, name):
    return [t for t in specs if t.name != name]


def _reshape(specs, name, shape):
    return [TensorSpec(t.name, shape) if t.name == name else t for t in specs]


@pytest.mark.parametrize("cell, edit, words", [
    ("lstm", lambda b: setattr(b.graphs["step"], "inputs", _drop(b.graphs["step"].inputs, "h_in")), ["'h_in'"]),
    ("gru", lambda b: setattr(b.graphs["step"], "inputs", _reshape(b.graphs["step"].inputs, "h_in", (1, 5))),
     ["'h_out'", "[1, 5]"]),
    ("lstm", lambda b: setattr(b.graphs["step"], "inputs", _reshape(b.graphs["step"].inputs, "c_in", (1, 4, 2))),
     ["'c_in'"]),
    ("lstm", lambda b: setattr(b.graphs["step"], "outputs", _drop(b.graphs["step"].outputs, "c_out")), ["'c_out'"]),
    ("gru", lambda b: setattr(b.graphs["backbone"], "outputs", [TensorSpec("feat", (1, 8))]), ["'v'", "'u'"]),
    ("gru", lambda b: setattr(b.graphs["step"], "inputs", _reshape(b.graphs["step"].inputs, "v", (1, 6))), ["'v'"]),
    ("gru", lambda b: b.policy.update(cell="lstm"), ["lstm", "'c_in'"]),
    ("lstm_u", lambda b: b.policy.update(cell="gru"), ["gru"]),
    ("gru", lambda b: b.labels.append("extra"), ["'logits'", "labels"]),
    ("gru", lambda b: b.policy.update(step_unit="clip"), ["step_unit", "'clip'"]),
])
def test_bundle_off_the_contract_is_a_manifest_error(prernn, cell, edit, words):
    bundle = prernn(cell)
    edit(bundle)
    with pytest.raises(ManifestError) as info:
        StreamRuntime(bundle, "ort")
    message = str(info.value)
    assert "re-export" in message.lower()
    for word in words:
        assert word in message


@pytest.mark.parametrize("options", [
    {"max_steps": 0}, {"max_steps": 2.5}, {"max_gap_s": -1.0}, {"max_gap_s": "soon"}, {"scene_cut": 0},
    {"scene_cut": 1.5}, {"scene_cut": True}, {"fine_cap": 2}, {"reset_every": 5},
])
def test_bad_options_are_config_errors(prernn, options):
    with pytest.raises(ConfigError):
        StreamRuntime(prernn("gru"), "ort", **options)


def test_bad_bundle_policy_is_a_config_error(prernn):
    with pytest.raises(ConfigError, match="max_steps"):
        StreamRuntime(prernn("gru", max_steps=-3), "ort")
    with pytest.raises(ConfigError, match="recurrent"):
        StreamRuntime(prernn("gru", kind="gated"), "ort")
