"""LiteEval's GPU plan (runtime/device/liteeval.py) checked without CUDA: which stream each op runs on, which event it
waits for, which tensors stay on the device, that no schedule the pipeline can produce races on a buffer, and
the policy over the plan (the executor, the CUDA boundary, replaced by a recorder)."""
from __future__ import annotations

import dataclasses
import gc
import random

import numpy as np
import pytest

from edgevid.bundle import load_bundle
from edgevid.errors import SessionError
from edgevid.runtime.device import liteeval as gp
from edgevid.runtime.gated import GatedStages
from tests.helpers.bundles import LITEEVAL, committed


def test_each_op_on_its_stream_and_only_gate_and_logits_come_back():
    coarse, = gp.plan_coarse(7, slots=4)
    step, = gp.plan_coarse_step(7, slots=4, parity=1)
    fine_cnn, fine_step = gp.plan_fine(parity=1)
    assert [op.stream for op in (coarse, step, fine_cnn, fine_step)] == [gp.COARSE, gp.CHAIN, gp.FINE, gp.CHAIN]
    # the features stay on the device: the CNNs write ring slot / feat_f, the steps read them there
    assert coarse.writes == ("feat_c#3",) and step.device["feat_c"] == "feat_c#3"
    assert fine_cnn.writes == ("feat_f",) and fine_step.device["feat_f"] == "feat_f"
    assert fine_step.device["v_c"] == step.device["v_c"] == "v_c"
    # the host feeds frames only and gets back the gate and the logits only
    assert coarse.host == fine_cnn.host == ("frame",) and not step.host and not fine_step.host
    assert step.fetch == ("gate_logits", "logits_sync") and fine_step.fetch == ("logits",)
    assert not coarse.fetch and not fine_cnn.fetch
    # cross-stream data goes through an event: ready before reading, free before writing again
    assert coarse.records == ("feat_c_ready#3",) and step.waits == ("feat_c_ready#3",)
    assert step.records == ("feat_c_free#3",) and coarse.waits == ("feat_c_free#3",)
    assert fine_step.waits == fine_cnn.records == ("feat_f_ready",)
    assert fine_cnn.waits == () and fine_step.records == ()  # the host's wait for the gate orders feat_f's reuse


@pytest.mark.parametrize("fine", [True, False])
def test_state_ping_pongs_and_the_next_step_reads_what_this_one_wrote(fine):
    this = gp.plan_liteeval_step(0, 4, parity=0, fine=fine)
    written = {b for op in this for b in op.writes if "#" in b and not b.startswith("feat")}
    assert written == {"h_c#1", "c_c#1", "h_f#1", "c_f#1"}  # by coarse_step (sync) and, fine, fine_step
    nxt, = gp.plan_coarse_step(1, 4, parity=1)
    assert set(nxt.reads) - {"feat_c#1"} == written
    for op in this:
        assert not set(op.reads) & set(op.writes)  # no run reads and writes one state buffer


def pipeline_schedule(steps, queue_size, gates, ahead=None):
    """The order two stage threads can enqueue the plan in: the coarse stage as far ahead as the queues let it
    (``ahead`` frames, default the most a pipeline of ``queue_size`` allows), the chain in frame order."""
    slots = gp.ring_slots(queue_size)
    ahead = slots - 1 if ahead is None else ahead
    ops, made, parity = [], 0, 0
    for t in range(steps):
        while made <= min(t + ahead, steps - 1):
            ops += gp.plan_coarse(made, slots)
            made += 1
        ops += gp.plan_liteeval_step(t, slots, parity, gates[t])
        parity = 1 - parity
    return ops


@pytest.mark.parametrize("queue_size", [1, 2, 4])
def test_no_schedule_the_pipeline_makes_races(queue_size):
    rng = random.Random(queue_size)
    gates = [rng.random() < 0.4 for _ in range(60)]
    for ahead in range(gp.ring_slots(queue_size)):
        assert gp.hazards(pipeline_schedule(60, queue_size, gates, ahead)) == [], ahead


def test_a_coarse_stage_further_ahead_than_the_ring_overwrites_a_feature_not_read_yet():
    ops = pipeline_schedule(10, 2, [False] * 10, ahead=gp.ring_slots(2))
    found = gp.hazards(ops)
    assert found and "of frame 0 reads feat_c#0 holding frame 4" in found[0]


def _without_waits(ops, role):
    return [dataclasses.replace(op, waits=()) if op.role == role else op for op in ops]


@pytest.mark.parametrize("role, clash", [("coarse_step", "reads feat_c#0 before op 0 (coarse_cnn"),
                                         ("fine_step", "reads feat_f before"),
                                         ("coarse_cnn", "writes feat_c#0 while")])
def test_each_event_wait_is_needed(role, clash):
    ops = pipeline_schedule(12, 1, [True, False] * 6)
    assert gp.hazards(ops) == []
    found = gp.hazards(_without_waits(ops, role))
    assert any(clash in f for f in found), found


def test_the_chain_threads_waits_for_gate_and_logits_are_what_order_the_fine_feature():
    ops = pipeline_schedule(6, 1, [True] * 6)
    blind = [dataclasses.replace(op, fetch=()) for op in ops]  # a host that never waited for the chain
    assert any("fine_cnn on fine) writes feat_f while" in f for f in gp.hazards(blind))


def test_the_ring_waits_for_a_slot_until_the_chain_read_it():
    ring = gp.FeatureRing(2, wait_s=0.05)
    a, b = ring.claim(), ring.claim()
    assert (a.seq, b.seq) == (0, 1)
    with pytest.raises(SessionError, match="not read frame 0.*frame 2 needs its slot"):
        ring.claim()  # frame 2 goes to slot 0, which frame 0 still holds
    a.read = True
    assert ring.claim().seq == 2
    with pytest.raises(SessionError, match="not read frame 1"):
        ring.claim()
    b.read = True
    assert ring.claim().seq == 3


def test_a_dropped_feature_frees_its_slot():
    ring = gp.FeatureRing(1, wait_s=0.05)
    first = ring.claim()
    with pytest.raises(SessionError):
        ring.claim()
    del first  # a live queue dropped the frame: nobody will read it
    gc.collect()
    assert ring.claim().seq == 1


class Recorder:
    """The executor boundary: records the ops the policy runs and answers with the gate the test chose."""

    def __init__(self, gates):
        self.gates, self.ran, self.zeroed = list(gates), [], []

    def run(self, ops, host=None):
        ops = list(ops)
        self.ran.append((ops, host))
        if ops[0].role == "coarse_step":
            fine = self.gates.pop(0)
            return {"coarse_step.gate_logits": np.array([[1.0, 0.0] if fine else [0.0, 1.0]], np.float32),
                    "coarse_step.logits_sync": np.full((1, 3), 7.0, np.float32)}
        return {"fine_step.logits": np.full((1, 3), 5.0, np.float32)}

    def zero(self, buffers, stream):
        self.zeroed.append((len(self.ran), list(buffers), stream))


def _policies(gates, **options):
    bundle = load_bundle(committed(LITEEVAL["mixed"]))
    plan = GatedStages.check(bundle, options)
    executor = Recorder(gates)
    device = gp.DeviceGatedPolicy(bundle, dict.fromkeys(gp.ROLE_IO), executor, 4, plan=plan)
    return device, executor, bundle, plan


def test_the_device_policy_runs_the_plan_with_the_host_policys_decisions():
    gates = [True, False, True, True, True, False, True]
    policy, executor, bundle, plan = _policies(gates, fine_cap=2, fine_window=3)
    paths = [policy.step(gp.DeviceFeature(t), lambda: np.zeros((1, 3, 224, 224), np.float32), t * 0.1)[1]
             for t in range(len(gates))]
    # the same cap rule as GatedPolicy: at most 2 fine steps in any 3
    assert paths == ["fine", "coarse", "fine", "fine", "coarse", "coarse", "fine"]
    assert policy.fine_capped == 1 and policy.fine_steps == 4
    chain = [op for ops, _ in executor.ran for op in ops]
    # each coarse_step reads the state the previous step wrote: parities alternate from 0, on both paths
    steps = [op for op in chain if op.role == "coarse_step"]
    assert [op.device["h_c_in"] for op in steps] == ["h_c#%d" % (t % 2) for t in range(len(gates))]
    assert [op.frame for op in steps] == list(range(len(gates)))
    fines = [op for op in chain if op.role == "fine_step"]
    # steps 0, 2, 3 and 6: each reads the state of its own step's parity and writes the other
    assert [(op.device["h_f_in"], op.device["h_f_out"]) for op in fines] == [
        ("h_f#0", "h_f#1"), ("h_f#0", "h_f#1"), ("h_f#1", "h_f#0"), ("h_f#0", "h_f#1")]
    assert all(host == {"fine_cnn": {"frame": host["fine_cnn"]["frame"]}} for ops, host in executor.ran
               if ops[0].role == "fine_cnn")
    assert executor.zeroed == [(0, ["h_c#0", "c_c#0", "h_f#0", "c_f#0"], gp.CHAIN)]  # the stream starts at zero


def test_a_reset_clears_the_state_the_next_step_reads_on_the_device():
    policy, executor, _, _ = _policies([False, False, False, True])
    frame = np.zeros((1, 3, 224, 224), np.float32)
    logits, path = policy.step(gp.DeviceFeature(0), frame, 0.0)
    assert path == "coarse" and float(logits[0, 0]) == 7.0  # the skip path returns logits_sync
    policy.step(gp.DeviceFeature(1), frame, 0.1)
    policy.step(gp.DeviceFeature(2), frame, 100.0)  # a gap longer than max_gap_s: reset before this step
    assert policy.resets == 1
    assert executor.zeroed[-1] == (2, ["h_c#0", "c_c#0", "h_f#0", "c_f#0"], gp.CHAIN)
    with pytest.raises(SessionError, match="runs the fine CNN itself"):
        policy.step(gp.DeviceFeature(3), None, 100.1, feat_f=np.zeros((1, 4), np.float32))


def test_the_gpu_chain_only_when_every_role_is_an_engine_on_one_gpu(tmp_path):
    from edgevid.backends.trt import TrtSession

    engines = {role: TrtSession(tmp_path / (role + ".engine")) for role in gp.ROLE_IO}
    assert gp.on_device(engines)
    assert not gp.on_device(dict(engines, fine_step=object()))  # ONNX Runtime or numpy sessions: host path
    assert not gp.on_device(dict(engines, fine_cnn=TrtSession(tmp_path / "f.engine", device=1)))
