"""The policies' decisions (runtime/policies.py GatedPolicy, runtime/recurrent.py RecurrentPolicy) on numpy
sessions whose outputs count steps (tests/helpers/numpy_session.py): here the graph maths is not under test,
the schedule is — which branch runs, when the state resets and why, what the cap turns away."""
from __future__ import annotations

import numpy as np
import pytest

from edgevid.errors import ConfigError
from edgevid.runtime.policies import GatedPolicy
from edgevid.runtime.recurrent import RecurrentPolicy
from tests.helpers import tiny_liteeval, tiny_prernn
from tests.helpers.numpy_session import CountingLiteEval, counting_step, numpy_sessions, session_for


def gated(bundle, graphs=None, **options):
    graphs = graphs or CountingLiteEval()
    sessions = {role: s.activate() for role, s in numpy_sessions(bundle, graphs.fns()).items()}
    return GatedPolicy(bundle, sessions, **options), graphs


def frame_224():
    return np.zeros((1, 3, 224, 224), np.float32)


def steps(policy, n, timestamps=None):
    """(logits [C], path) of n steps; the fine frame is a thunk, as the stages pass it."""
    feat = np.zeros((1, tiny_liteeval.COARSE_FEAT), np.float32)
    out = []
    for t in range(n):
        logits, path = policy.step(feat, frame_224, None if timestamps is None else timestamps[t])
        out.append((logits[0], path))
    return out


def fine_at(out):
    return [t for t, (_, path) in enumerate(out) if path == "fine"]


# GatedPolicy ------------------------------------------------------------------------------------------------
def test_fine_cap_in_a_sliding_window(make_bundle):
    policy, graphs = gated(make_bundle("fine"), fine_cap=2, fine_window=5)
    out = steps(policy, 24)
    assert fine_at(out) == [0, 1, 5, 6, 10, 11, 15, 16, 20, 21]
    assert policy.fine_steps == 10 and policy.fine_capped == 14  # every coarse step was a capped fine choice
    assert graphs.fine_cnn_calls == 10  # the fine frame and CNN only on fine steps


def test_fine_cap_per_reset_segment_without_a_window(make_bundle):
    policy, _ = gated(make_bundle("fine"), fine_cap=3)  # max_steps 129: one segment
    out = steps(policy, 24)
    assert fine_at(out) == [0, 1, 2]  # the cap is used up for the segment
    policy, _ = gated(make_bundle("fine", fine_cap=3, max_steps=10))  # from the bundle's policy
    out = steps(policy, 24)
    assert fine_at(out) == [0, 1, 2, 10, 11, 12, 20, 21, 22]  # each reset gives the cap back
    assert policy.resets == 2 and policy.reset_causes == {"max_steps": 2}


def test_a_cap_of_zero_never_runs_the_fine_branch(make_bundle):
    policy, graphs = gated(make_bundle("fine"), fine_cap=0)
    assert fine_at(steps(policy, 10)) == [] and graphs.fine_cnn_calls == 0 and policy.fine_capped == 10


def test_ties_go_to_the_fine_branch(make_bundle):
    policy, _ = gated(make_bundle("tie"), CountingLiteEval(lambda call: (0.25, 0.25) if call % 2 else False))
    assert fine_at(steps(policy, 6)) == [1, 3, 5]


def test_state_carries_and_resets_every_max_steps(make_bundle):
    """logits_sync[0] is the coarse state's step count since the last reset, [2] the fine state's."""
    policy, _ = gated(make_bundle("mixed", max_steps=5), CountingLiteEval(lambda call: call % 4 == 0))
    out = steps(policy, 12)
    coarse = {t: logits for t, (logits, path) in enumerate(out) if path == "coarse"}
    # fine at steps 0, 4, 8; resets before steps 5 and 10: coarse steps 1-3 | 5-7, 9 | 10-11
    assert sorted(coarse) == [1, 2, 3, 5, 6, 7, 9, 10, 11]
    assert [coarse[t][0] for t in sorted(coarse)] == [2, 3, 4, 1, 2, 3, 5, 1, 2]
    assert [coarse[t][2] for t in sorted(coarse)] == [1, 1, 1, 0, 0, 0, 1, 0, 0]  # the fine state carried, then reset
    assert policy.resets == 2 and policy.steps == 12 and policy.since_reset == 2


def test_a_timestamp_gap_resets_and_is_counted_as_the_cause(make_bundle):
    policy, _ = gated(make_bundle("coarse", max_gap_s=1.0), CountingLiteEval(lambda call: False))
    times = [0.1 * t for t in range(6)] + [10.0 + 0.1 * t for t in range(4)]
    out = steps(policy, 10, times)
    assert [logits[0] for logits, _ in out] == [1, 2, 3, 4, 5, 6, 1, 2, 3, 4]
    assert policy.reset_causes == {"gap": 1}


def test_refuses_missing_sessions_and_other_policies(make_bundle):
    bundle = make_bundle("mixed")
    sessions = numpy_sessions(bundle, CountingLiteEval().fns())
    del sessions["fine_step"]
    with pytest.raises(ConfigError, match="needs sessions for fine_step"):
        GatedPolicy(bundle, sessions)
    with pytest.raises(ConfigError, match="kind is 'recurrent'"):
        gated(make_bundle("mixed", kind="recurrent"))
    with pytest.raises(ConfigError, match="fine_window"):
        gated(bundle, fine_cap=1, fine_window=0)


# RecurrentPolicy --------------------------------------------------------------------------------------------
def recurrent(bundle, **options):
    return RecurrentPolicy(bundle, session_for(bundle, "step", counting_step).activate(), **options)


def counts(policy, n, timestamps=None, cuts=(), request_at=()):
    drive = np.zeros((1, tiny_prernn.H), np.float32)
    out = []
    for t in range(n):
        if t in request_at:
            policy.request_reset()
        logits = policy.step(drive, None if timestamps is None else timestamps[t], scene_cut=t in cuts)
        out.append(int(logits[0, 0]))
    return out


@pytest.mark.parametrize("cell", ["lstm", "gru", "vrnn"])
def test_recurrent_state_carries_until_each_kind_of_reset(prernn, cell):
    policy = recurrent(prernn(cell), max_steps=6, max_gap_s=1.0)
    times = [0.1 * t for t in range(10)] + [5.0 + 0.1 * t for t in range(10)]
    out = counts(policy, 20, times, cuts=(3, 14), request_at=(17,))
    # 0-2 | cut at 3: 3-8 | max_steps at 9 | gap at 10: 10-13 | cut at 14: 14-16 | request at 17: 17-19
    assert out == [1, 2, 3, 1, 2, 3, 4, 5, 6, 1, 1, 2, 3, 4, 1, 2, 3, 1, 2, 3]
    assert policy.reset_causes == {"scene_cut": 2, "max_steps": 1, "gap": 1, "request": 1}
    assert set(policy.state) == ({"h", "c"} if cell == "lstm" else {"h"})


def test_one_reset_per_step_and_none_on_the_first(prernn):
    """A cut and a gap on the same step reset once, counted as the gap; a cut on step 0 costs nothing."""
    policy = recurrent(prernn("gru"), max_gap_s=1.0)
    out = counts(policy, 6, [0.0, 0.1, 0.2, 5.0, 5.1, 5.2], cuts=(0, 3))
    assert out == [1, 2, 3, 1, 2, 3] and policy.resets == 1 and policy.reset_causes == {"gap": 1}
