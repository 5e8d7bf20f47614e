"""PreRNN's device plan (runtime/device/prernn.py) checked without CUDA: which stream each op runs on, which
buffers stay on the device and which come back, that the state ping-pongs and a reset clears it in stream order,
that no schedule the two stage threads can produce races (resets included), and the policy and stages over the
plan (the executor, the CUDA boundary, replaced by a recorder). On a GPU: tests/backends/test_cuda_gpu.py."""
from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest

from edgevid.bundle import load_bundle
from edgevid.errors import SessionError
from edgevid.runtime.device import executor as ex
from edgevid.runtime.device import plan as dp
from edgevid.runtime.device import prernn as rp
from edgevid.runtime.recurrent import RecurrentPolicy, RecurrentStages
from edgevid.spec import TensorSpec
from tests.helpers.bundles import PRERNN, committed

LSTM, GRU = ("h", "c"), ("h",)


def test_each_op_on_its_stream_and_only_the_logits_come_back():
    backbone, = rp.plan_backbone(7, slots=4, drive="v")
    step, = rp.plan_step(7, 1, "v", LSTM, slots=4)
    assert (backbone.stream, step.stream) == (dp.BACKBONE, dp.STEP)
    assert dp.THREAD[dp.BACKBONE] == "cnn" and dp.THREAD[dp.STEP] == "rnn"  # the stage threads enqueueing them
    # the backbone's output stays on the device: written into ring slot 7 % 4, read there by the step
    assert backbone.writes == ("drive#3",) and step.device["v"] == "drive#3" and step.frame == backbone.frame == 7
    assert set(step.reads) == {"drive#3", "h#1", "c#1"} and set(step.writes) == {"h#0", "c#0"}
    # the host uploads the frame and gets the logits back, nothing else
    assert backbone.host == ("frame",) and not backbone.fetch
    assert not step.host and step.fetch == ("logits",) and "logits" not in step.device
    assert backbone.waits == ("drive_free#3",) and backbone.records == ("drive_ready#3",)
    assert step.waits == ("drive_ready#3",) and step.records == ("drive_free#3",)


def test_with_the_backbone_on_the_host_the_drive_goes_up_with_the_step_and_the_state_stays():
    step, = rp.plan_step(None, 0, "u", GRU)
    assert step.host == ("u",) and step.fetch == ("logits",) and not step.waits and not step.records
    assert step.device == {"h_in": "h#0", "h_out": "h#1"} and step.frame is None


@pytest.mark.parametrize("states", [LSTM, GRU])
def test_state_ping_pongs_and_the_next_step_reads_what_this_one_wrote(states):
    this, = rp.plan_step(0, 0, "v", states, slots=3)
    nxt, = rp.plan_step(1, 1, "v", states, slots=3)
    assert set(this.writes) == {"%s#1" % s for s in states} == set(nxt.reads) - {"drive#1"}
    assert set(nxt.writes) == {"%s#0" % s for s in states}
    for op in (this, nxt):
        assert not set(op.reads) & set(op.writes)  # no run reads and writes one state buffer


def test_a_reset_clears_the_state_the_step_reads_on_the_step_stream_before_it():
    zero, step = rp.plan_recurrent_step(4, 1, "v", LSTM, slots=3, reset=True)
    assert zero.role == dp.ZERO and zero.stream == dp.STEP and set(zero.writes) == {"h#1", "c#1"}
    assert not zero.reads and not zero.host and not zero.fetch
    assert set(zero.writes) <= set(step.reads)
    assert rp.plan_recurrent_step(4, 1, "v", LSTM, slots=3) == [step]


def schedule(steps, queue_size, resets, ahead=None, states=LSTM, on_ring=True):
    """The order the cnn and rnn threads can enqueue the plan in: the backbone as far ahead as the queues let it
    (``ahead`` frames, default the most a pipeline of ``queue_size`` allows), the steps in frame order, with a
    reset before the steps in ``resets`` (and step 0: the stream starts from zeros)."""
    slots = dp.ring_slots(queue_size) if on_ring else None
    ahead = (slots or 1) - 1 if ahead is None else ahead
    ops, made, parity = [], 0, 0
    for t in range(steps):
        while on_ring and made <= min(t + ahead, steps - 1):
            ops += rp.plan_backbone(made, slots, "v")
            made += 1
        ops += rp.plan_recurrent_step(t if on_ring else None, parity, "v", states, slots,
                                      reset=t == 0 or t in resets)
        parity = 1 - parity
    return ops


@pytest.mark.parametrize("queue_size", [1, 2, 4])
@pytest.mark.parametrize("states", [LSTM, GRU])
def test_no_schedule_the_pipeline_makes_races_resets_included(queue_size, states):
    rng = random.Random(queue_size)
    resets = {t for t in range(40) if rng.random() < 0.2}
    for ahead in range(dp.ring_slots(queue_size)):
        assert dp.hazards(schedule(40, queue_size, resets, ahead, states)) == [], ahead
    assert dp.hazards(schedule(40, queue_size, resets, states=states, on_ring=False)) == []


def test_a_backbone_further_ahead_than_the_ring_overwrites_a_drive_not_stepped_yet():
    found = dp.hazards(schedule(10, 2, set(), ahead=dp.ring_slots(2)))
    assert found and "of frame 0 reads drive#0 holding frame 4" in found[0]


def _without_waits(ops, role):
    return [dataclasses.replace(op, waits=()) if op.role == role else op for op in ops]


@pytest.mark.parametrize("role, clash", [("step", "reads drive#0 before op 0 (backbone"),
                                         ("backbone", "writes drive#0 while")])
def test_each_event_wait_is_needed(role, clash):
    ops = schedule(12, 1, {5})
    assert dp.hazards(ops) == []
    found = dp.hazards(_without_waits(ops, role))
    assert any(clash in f for f in found), found


def test_a_reset_queued_on_another_stream_would_race_with_the_steps():
    ops = schedule(6, 1, {3})
    moved = [dataclasses.replace(op, stream=dp.BACKBONE) if op.role == dp.ZERO else op for op in ops]
    found = dp.hazards(moved)
    # the backbone stream is ordered after some steps (its drive_free waits), never before the next step's read
    assert any("(step on step) reads h#1 before" in f and "(zero on backbone)" in f for f in found), found


def test_all_ops_name_every_buffer_and_event_the_plan_uses():
    ops = rp.all_ops("v", LSTM, slots=3)
    streamed = schedule(20, 1, {4, 9})
    assert {b for op in streamed for b in op.reads + op.writes} == {b for op in ops for b in op.reads + op.writes}
    assert {e for op in streamed for e in op.waits + op.records} <= {e for op in ops for e in op.waits + op.records}
    host_only = rp.all_ops("u", GRU)
    assert {b for op in host_only for b in op.reads + op.writes} == {"h#0", "h#1"}
    assert {op.role for op in host_only} == {"step", dp.ZERO}


class SpecSession:
    """Just the specs of a role (what DeviceExecutor sizes its buffers from)."""

    def __init__(self, bundle, role):
        graph = bundle.graph(role)
        self.inputs, self.outputs = list(graph.inputs), list(graph.outputs)


def test_buffers_are_sized_from_the_bound_tensors_and_a_buffer_only_zeroed_is_refused():
    bundle = load_bundle(committed(PRERNN["lstm_u"]))
    contract = RecurrentStages.check(bundle, {})["contract"]
    sessions = {role: SpecSession(bundle, role) for role in rp.ROLES}
    drive, states = contract.drive, rp.state_names(contract)
    assert drive == "u" and states == LSTM
    sizes = ex.DeviceExecutor(sessions)._sizes(rp.all_ops(drive, states, slots=3))
    width, hidden = bundle.graph("backbone").outputs[0].shape[1], contract.states["h"][1]
    assert sizes == dict({"drive#%d" % k: 4 * width for k in range(3)},
                         **{"%s#%d" % (s, p): 4 * hidden for s in LSTM for p in (0, 1)})
    with pytest.raises(SessionError, match="clears buffers"):
        ex.DeviceExecutor(sessions)._sizes([dp.Op(dp.ZERO, dp.STEP, {"x": "x#0"})])
    bad = SpecSession(bundle, "step")
    bad.inputs = [TensorSpec(t.name, (1, 3), t.dtype) if t.name == "h_in" else t for t in bad.inputs]
    with pytest.raises(SessionError, match="of another size"):
        ex.DeviceExecutor(dict(sessions, step=bad))._sizes(rp.all_ops(drive, states, slots=3))


# the policy and the stages over the plan ----------------------------------------------------------------
class Recorder:
    """The executor boundary: records the ops it is given, answers the step's logits with the step count."""

    def __init__(self, sessions=None, device=0, record=None):
        self.sessions, self.ran, self.prepared = sessions, [], None

    def prepare(self, ops):
        self.prepared = list(ops)
        return self

    def run(self, ops, host=None):
        ops = list(ops)
        self.ran.append((ops, host))
        if ops[-1].role == "step":
            return {"step.logits": np.full((1, 3), float(len(self.ran)), np.float32)}
        return {}

    def ops(self):
        return [op for ops, _ in self.ran for op in ops]


def _policy(cell, slots, **options):
    bundle = load_bundle(committed(PRERNN[cell]))
    plan = RecurrentStages.check(bundle, options)
    executor = Recorder()
    contract = plan["contract"]
    step = rp.DeviceStep(executor, contract.drive, rp.state_names(contract), slots)
    return RecurrentPolicy(bundle, object(), plan=plan, device=step), executor, plan


def _drive(policy, t, width=8):
    return ex.DeviceFeature(t) if policy.device.slots is not None else np.zeros((1, width), np.float32)


@pytest.mark.parametrize("cell, slots", [("lstm", 3), ("gru", None), ("vrnn", 3)])
def test_the_device_step_resets_where_the_host_policy_does_and_clears_on_the_device(cell, slots):
    policy, executor, plan = _policy(cell, slots, max_steps=6, max_gap_s=1.0)
    host = RecurrentPolicy(load_bundle(committed(PRERNN[cell])), object(), plan=plan)
    host._run_step = lambda drive: np.zeros((1, 3), np.float32)  # its decisions only
    times = [0.1 * t for t in range(10)] + [5.0 + 0.1 * t for t in range(10)]
    cuts, requests = (3, 14), (17,)
    reset_at = []
    for t in range(20):
        for p in (policy, host):
            if t in requests:
                p.request_reset()
        before = host.resets
        drive = _drive(policy, t)
        policy.step(drive, times[t], scene_cut=t in cuts)
        host.step(None, times[t], scene_cut=t in cuts)
        if host.resets != before:
            reset_at.append(t)
        if slots is not None:
            assert drive.read  # its ring slot may be written again
    assert reset_at == [3, 9, 10, 14, 17]
    assert (policy.resets, policy.reset_causes) == (host.resets, host.reset_causes) == (
        5, {"scene_cut": 2, "max_steps": 1, "gap": 1, "request": 1})
    states = rp.state_names(plan["contract"])
    assert policy.state == {}  # nothing kept on the host
    # each step ran [zero]? + step; the zeros exactly at the stream start and at the resets, clearing what it reads
    assert [ops[0].role == dp.ZERO for ops, _ in executor.ran] == [t in [0] + reset_at for t in range(20)]
    steps = [op for op in executor.ops() if op.role == "step"]
    assert [op.device["h_in"] for op in steps] == ["h#%d" % (t % 2) for t in range(20)]
    for ops, _ in executor.ran:
        if ops[0].role == dp.ZERO:
            assert set(ops[0].writes) == {dp.state(s, int(ops[1].device["h_in"][-1])) for s in states}
    # only the logits come back; the drive from the ring, or from the host with the step
    assert all(op.fetch == ("logits",) for op in steps)
    drive = plan["contract"].drive
    if slots is None:
        assert all(host == {"step": {drive: host["step"][drive]}} for _, host in executor.ran)
    else:
        assert [op.frame for op in steps] == list(range(20)) and all(host is None for _, host in executor.ran)
    assert dp.hazards(executor.ops()) == []


def test_the_device_step_refuses_a_drive_of_the_other_kind():
    policy, _, _ = _policy("lstm", 3)
    with pytest.raises(SessionError, match="got a ndarray drive"):
        policy.step(np.zeros((1, 8), np.float32), 0.0)
    policy, _, _ = _policy("gru", None)
    with pytest.raises(SessionError, match="got a DeviceFeature drive"):
        policy.step(ex.DeviceFeature(0), 0.0)


def test_the_stages_run_the_plan_when_the_step_is_an_engine(monkeypatch):
    pytest.importorskip("cv2")  # the stages' preprocessor
    from edgevid.runtime import recurrent
    from edgevid.runtime.source import Frame
    from edgevid.runtime.stats import StreamStats

    monkeypatch.setattr(rp, "DeviceExecutor", Recorder)
    bundle = load_bundle(committed(PRERNN["lstm"]))
    plan = dict(RecurrentStages.check(bundle, {"scene_cut": 0.3}), queue_size=2, preprocess="cpu")

    class Engine:
        device = 0

    monkeypatch.setattr(rp, "on_device", lambda sessions, roles: True)  # both roles "engines on one GPU"
    stages = RecurrentStages(bundle, {"backbone": Engine(), "step": Engine()}, StreamStats(), plan)
    device = stages.device
    assert device is not None and device.ring.slots == dp.ring_slots(2) and stages.policy.device is device.step
    assert device.executor.prepared == rp.all_ops("v", LSTM, device.ring.slots)
    x = np.zeros((1, 3, 224, 224), np.float32)
    works = [recurrent._Work(Frame(t, 0.1 * t, None, 0.0), x, 0.9 if t == 3 else 0.0) for t in range(5)]
    for work in works[:4]:  # the cnn thread as far ahead as the ring of 4 lets it
        stages.cnn(work)
    assert all(isinstance(w.drive, ex.DeviceFeature) and w.x is None for w in works[:4])
    stages.rnn(works[0])
    stages.cnn(works[4])  # frame 4 takes slot 0, which frame 0's step has read
    for work in works[1:]:
        prediction, _ = stages.rnn(work)
    ran = device.executor.ran
    assert [ops[0].role for ops, _ in ran] == ["backbone"] * 4 + [dp.ZERO, "backbone", "step", "step", dp.ZERO,
                                                                  "step"]
    assert prediction.frame_index == 4 and prediction.path == "step"
    assert ran[0][1] == {"backbone": {"frame": x}}
    assert dp.hazards(device.executor.ops()) == []
    assert stages.stats.resets == 1 and stages.policy.reset_causes == {"scene_cut": 1}

    # a step engine with the backbone elsewhere: the state on the device, the drive from the host
    monkeypatch.setattr(rp, "on_device", lambda sessions, roles: tuple(roles) == ("step",))
    host_backbone = SpecSession(bundle, "backbone")
    host_backbone.infer = lambda feeds: {"v": np.ones((1, 8), np.float32)}
    stages = RecurrentStages(bundle, {"backbone": host_backbone, "step": Engine()}, StreamStats(), plan)
    assert stages.device.ring is None
    work = stages.cnn(recurrent._Work(Frame(0, 0.0, None, 0.0), x, 0.0))
    stages.rnn(work)
    (zero, step), host = stages.device.executor.ran[0]
    assert zero.role == dp.ZERO and step.host == ("v",) and np.array_equal(host["step"]["v"], np.ones((1, 8)))


def test_the_state_stays_on_the_device_only_when_the_step_is_an_engine(tmp_path):
    from edgevid.backends.trt import TrtSession

    engines = {role: TrtSession(tmp_path / (role + ".engine")) for role in rp.ROLES}
    assert rp.step_on_device(engines) and ex.on_device(engines, rp.ROLES)
    assert not rp.step_on_device(dict(engines, step=object()))  # ONNX Runtime or numpy: the host path
    # the step on the device, the backbone's output from the host: another backend or another GPU
    assert rp.step_on_device(dict(engines, backbone=object()))
    assert not ex.on_device(dict(engines, backbone=object()), rp.ROLES)
    assert not ex.on_device(dict(engines, backbone=TrtSession(tmp_path / "b.engine", device=1)), rp.ROLES)
