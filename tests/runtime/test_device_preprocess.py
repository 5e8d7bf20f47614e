"""GPU preprocessing in LiteEval's device plan (runtime/device/liteeval.py, device/preprocess.py), checked without
CUDA: the decoded frame goes up once, both CNN inputs are written on the coarse stream, the fine input waits in a
ring slot that the next frame of that slot may only overwrite after the fine CNN read it; and the one rule that
chooses the GPU or the CPU path, with its errors."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edgevid.bundle import load_bundle
from edgevid.errors import ConfigError, DependencyError
from edgevid.runtime.device import liteeval as gp
from edgevid.runtime.device import preprocess as pre
from edgevid.runtime.device import prernn as rp
from edgevid.runtime.gated import GatedStages
from tests.helpers.bundles import LITEEVAL, committed
from tests.runtime.test_device_liteeval import Recorder


def schedule(steps, queue_size, gates, ahead=None, read_at_coarse_step=False):
    """The order the two stage threads enqueue the GPU-preprocessing plan in (as test_device_liteeval's
    pipeline_schedule). ``read_at_coarse_step``: the coarse stage may claim a slot as soon as the chain's
    coarse_step of the frame before in that slot is queued, before its fine branch (a ring freed too early)."""
    slots = gp.ring_slots(queue_size)
    ahead = slots - 1 if ahead is None else ahead
    ops, made, parity = [], 0, 0
    for t in range(steps):
        step = gp.plan_liteeval_step(t, slots, parity, gates[t], gpu_pre=True)
        if read_at_coarse_step:
            ops += step[:1]
            ahead_now = ahead + 1
        else:
            ahead_now = ahead
        while made <= min(t + ahead_now, steps - 1):
            ops += gp.plan_coarse(made, slots, gpu_pre=True)
            made += 1
        ops += step[1:] if read_at_coarse_step else step
        parity = 1 - parity
    return ops


def test_the_frame_goes_up_once_and_both_inputs_are_made_on_the_coarse_stream():
    prep, coarse = gp.plan_coarse(6, slots=4, gpu_pre=True)
    fine_cnn, fine_step = gp.plan_fine(1, seq=6, slots=4)
    assert prep.role == pre.ROLE and prep.stream == coarse.stream == gp.COARSE
    assert prep.host == ("frame",) and not coarse.host and not fine_cnn.host
    assert set(prep.writes) == {"frame_c", "frame_f#2"} and coarse.reads == ("frame_c",)
    assert fine_cnn.reads == ("frame_f#2",) and fine_cnn.stream == gp.FINE
    # the fine input is freed when the fine CNN has read it; the host's wait for the gate orders its reading
    assert fine_cnn.waits == () and "frame_f_free#2" in fine_cnn.records
    assert set(prep.waits) == {"feat_c_free#2", "frame_f_free#2"}
    assert fine_step.waits == ("feat_f_ready",)


@pytest.mark.parametrize("queue_size", [1, 2, 4])
def test_no_schedule_the_pipeline_makes_races(queue_size):
    rng = np.random.RandomState(queue_size)
    gates = list(rng.rand(40) < 0.4)
    for ahead in range(gp.ring_slots(queue_size)):
        assert gp.hazards(schedule(40, queue_size, gates, ahead)) == [], ahead


def test_a_slot_freed_at_coarse_step_lets_the_next_frame_overwrite_a_fine_input_not_read_yet():
    found = gp.hazards(schedule(12, 1, [True] * 12, read_at_coarse_step=True))
    assert any("fine_cnn on fine) of frame 0 reads frame_f#0 holding frame 3" in f for f in found), found


def test_the_preprocessing_waits_until_the_fine_cnn_read_the_slot():
    ops = schedule(12, 1, [True, False, True] * 4)
    assert gp.hazards(ops) == []
    blind = [dataclasses.replace(op, waits=()) if op.role == pre.ROLE else op for op in ops]
    assert any("writes frame_f#" in f and "fine_cnn" in f for f in gp.hazards(blind)), gp.hazards(blind)


def test_the_chain_threads_wait_for_the_gate_orders_the_fine_cnn_after_the_preprocessing():
    ops = schedule(8, 1, [True] * 8)
    blind = [dataclasses.replace(op, fetch=()) for op in ops]  # a host that never waited for the chain
    assert any("fine_cnn on fine) reads frame_f#" in f for f in gp.hazards(blind)), gp.hazards(blind)


def test_the_device_policy_frees_a_slot_only_after_the_fine_branch_is_queued():
    bundle = load_bundle(committed(LITEEVAL["mixed"]))
    plan = GatedStages.check(bundle, {})
    executor = Recorder([True, False])
    policy = gp.DeviceGatedPolicy(bundle, dict.fromkeys(gp.ROLE_IO), executor, 4, gpu_pre=True, plan=plan)
    seen = []
    run = executor.run

    def watch(ops, host=None):
        seen.append((ops[0].role, feature.read))
        return run(ops, host)

    executor.run = watch
    for seq in range(2):
        feature = gp.DeviceFeature(seq)
        policy.step(feature, None, timestamp=seq / 10.0)
        assert feature.read
    assert seen == [("coarse_step", False), ("fine_cnn", False), ("coarse_step", False)]
    fine_ops, host = executor.ran[1]
    assert fine_ops[0].device["frame"] == "frame_f#0" and not host  # nothing uploaded for the fine CNN


def test_every_op_shape_is_prepared_with_the_fine_inputs_ring():
    ops = gp.all_ops(3, gpu_pre=True)
    assert {b for op in ops for b in op.writes if b.startswith("frame_f#")} == {"frame_f#0", "frame_f#1", "frame_f#2"}
    assert all(not op.host for op in ops if op.role == "fine_cnn")


# PreRNN: the backbone's input prepared on its stream ------------------------------------------------------
def prernn_schedule(steps, queue_size, ahead):
    slots = gp.ring_slots(queue_size)
    ops, made, parity = [], 0, 0
    for t in range(steps):
        while made <= min(t + ahead, steps - 1):
            ops += rp.plan_backbone(made, slots, "v", gpu_pre=True)
            made += 1
        ops += rp.plan_recurrent_step(t, parity, "v", ("h", "c"), slots, reset=t == 0)
        parity = 1 - parity
    return ops


def test_prernn_prepares_the_backbone_input_on_the_backbone_stream():
    prep, backbone = rp.plan_backbone(5, 3, "v", gpu_pre=True)
    assert prep.role == pre.ROLE and prep.stream == backbone.stream == rp.BACKBONE and prep.host == ("frame",)
    assert prep.writes == ("frame_b",) and backbone.reads == ("frame_b",) and not backbone.host
    assert backbone.writes == ("drive#2",)
    ops = rp.all_ops("v", ("h", "c"), 3, gpu_pre=True)
    assert sum(op.role == pre.ROLE for op in ops) == 3


@pytest.mark.parametrize("queue_size", [1, 2, 4])
def test_no_prernn_schedule_races_with_gpu_preprocessing(queue_size):
    for ahead in range(gp.ring_slots(queue_size)):
        assert gp.hazards(prernn_schedule(30, queue_size, ahead)) == [], ahead


# choosing the path ---------------------------------------------------------------------------------------
class Session:
    def __init__(self, backend="trt"):
        self.backend, self.device = backend, 0


def test_modes_are_checked_before_any_run():
    with pytest.raises(ConfigError, match="preprocess is 'fast'"):
        pre.check_mode("fast", "auto")
    with pytest.raises(ConfigError, match="with the ort backend"):
        pre.check_mode("gpu", "ort")
    pre.check_mode("gpu", "trt")
    pre.check_mode("auto", "ort")


def test_cpu_unless_every_cnn_is_an_engine_and_gpu_asked_where_it_cannot_is_an_error(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGEVID_PREPROC_LIB", str(tmp_path / "missing.so"))
    monkeypatch.setattr("edgevid.native.candidates", lambda: [tmp_path / "missing.so"])
    sessions = {"coarse_cnn": Session("ort")}
    assert pre.choose("cpu", None, sessions, True, {"coarse": "coarse_cnn"}) is None
    assert pre.choose("auto", None, sessions, False, {"coarse": "coarse_cnn"}) is None
    with pytest.raises(ConfigError, match="every CNN on a TensorRT engine"):
        pre.choose("gpu", None, sessions, False, {"coarse": "coarse_cnn"})
    assert pre.choose("auto", None, {"coarse_cnn": Session()}, True, {"coarse": "coarse_cnn"}) is None  # not built: the CPU path
    with pytest.raises(DependencyError, match="not built") as e:
        pre.choose("gpu", None, {"coarse_cnn": Session()}, True, {"coarse": "coarse_cnn"})
    assert "cmake -S cmake -B build/native" in str(e.value)
