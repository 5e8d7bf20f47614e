"""SlowFast's GPU plan (runtime/device/slowfast.py) checked without CUDA: the window ring written from the uploaded
frame on the window stream, each due clip assembled into a buffer of its own, the engine reading it on the infer
stream; no schedule of the two threads races; and the window's device bookkeeping gives, byte for byte, the clips
the host window assembles (device memory emulated in numpy behind the same copy and tensor calls)."""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest

from edgevid.runtime.clip import ClipPolicy
from edgevid.runtime.device import plan as dp
from edgevid.runtime.device import preprocess as pre
from edgevid.runtime.device import slowfast as ds
from edgevid.spec import PreprocessSpec, TensorSpec


def test_each_op_on_its_stream_and_only_the_logits_come_back():
    frame, = ds.plan_frame(5)
    assemble, = ds.plan_assemble(5, slots=3)
    clip, = ds.plan_clip(5, slots=3)
    assert (frame.stream, assemble.stream, clip.stream) == (dp.WINDOW, dp.WINDOW, dp.INFER)
    assert frame.host == ("frame",) and frame.writes == ("window",)
    assert assemble.reads == ("window",) and assemble.writes == ("clip#2",) and assemble.host == ("write",)
    assert clip.reads == ("clip#2",) and clip.fetch == ("logits",) and not clip.host
    assert assemble.records == ("clip_ready#2",) and clip.waits == ("clip_ready#2",)
    assert clip.records == ("clip_free#2",) and assemble.waits == ("clip_free#2",)


def schedule(frames, queue_size, every, ahead):
    """The window thread pushing frames and assembling a clip every ``every`` frames, as far as ``ahead`` clips
    before the infer thread runs them (the FeatureRing lets it at most slots - 1 ahead)."""
    slots = dp.ring_slots(queue_size)
    ops, made, run = [], 0, 0
    for t in range(frames):
        ops += ds.plan_frame(t)
        if t % every == every - 1:
            ops += ds.plan_assemble(made, slots)
            made += 1
            while run < made - ahead:
                ops += ds.plan_clip(run, slots)
                run += 1
    while run < made:
        ops += ds.plan_clip(run, slots)
        run += 1
    return ops


@pytest.mark.parametrize("queue_size", [1, 2, 4])
def test_no_schedule_the_pipeline_makes_races(queue_size):
    for ahead in range(dp.ring_slots(queue_size)):
        for every in (1, 2, 4):
            assert dp.hazards(schedule(24, queue_size, every, ahead)) == [], (ahead, every)


def test_an_assembly_further_ahead_than_the_buffers_overwrites_a_clip_not_run_yet():
    found = dp.hazards(schedule(24, 1, 2, ahead=dp.ring_slots(1)))
    assert any("reads clip#0 holding" in f for f in found), found


@pytest.mark.parametrize("role, clash", [("clip", "reads clip#"), ("clip_assemble", "writes clip#")])
def test_each_event_wait_is_needed(role, clash):
    ops = schedule(16, 1, 2, ahead=2)
    assert dp.hazards(ops) == []
    blind = [dataclasses.replace(op, waits=()) if op.role == role else op for op in ops]
    assert any(clash in f for f in dp.hazards(blind)), dp.hazards(blind)


# the window's device bookkeeping against the host window, on emulated device memory ---------------------------
class Memory:
    """Device memory as one numpy byte array; an address is an offset into it."""

    def __init__(self, nbytes):
        self.bytes = np.zeros(nbytes, np.uint8)
        self.next = 64

    def alloc(self, nbytes):
        ptr, self.next = self.next, self.next + nbytes + 64
        return ptr

    def copy(self, dest, src, nbytes, stream=None):
        self.bytes[dest:dest + nbytes] = self.bytes[src:src + nbytes].copy()

    def floats(self, ptr, shape):
        n = int(np.prod(shape)) * 4
        return self.bytes[ptr:ptr + n].view(np.float32).reshape(shape)


class Library:
    """libedgevid_preproc's two calls on emulated memory: crop keeps the frame, tensor writes it as planes."""

    def __init__(self, memory):
        self.memory, self.cropped = memory, None

    def crop(self, frame, spec, crop_ptr, stream):
        self.cropped = self.pending

    def tensor(self, crop_ptr, spec, size, dtype, out_ptr, channel_stride, stream):
        planes = self.cropped.reshape(3, size * size)
        for c in range(3):
            start = out_ptr + c * channel_stride * 4
            self.memory.bytes[start:start + size * size * 4] = planes[c].view(np.uint8)


def replay(memory, frames, slots_per_frame, resets, T=4, S=2, pad="none"):
    """The clips of a host ClipPolicy, and those of a device one whose window ring lives in emulated memory,
    written by DevicePreprocess's own slot arithmetic and assembled by ClipAssembler's own copies."""
    spec = TensorSpec("clip", (1, 3, T, S, S), "float32")
    lib = Library(memory)
    preprocess = pre.DevicePreprocess(PreprocessSpec(resize_short=S, crop=S, sizes=(S,)), {"window": spec}, lib)
    preprocess._crop = preprocess._frame = SimpleNamespace(ptr=0)  # the crop itself is the Library's
    stream = SimpleNamespace(handle=None)
    ring = memory.alloc(3 * T * S * S * 4)
    assembler = ds.ClipAssembler(spec)
    host, device = ClipPolicy(T, S, pad=pad), ClipPolicy(T, S, pad=pad)
    device.window = window = ds.DeviceClipWindow(T, S)
    host_clips, device_clips = [], []
    for f, n, reset in zip(frames, slots_per_frame, resets):
        due = host.push(f, n, reset)
        assert device.push(f, n, reset) == due
        lib.pending = f
        preprocess.enqueue(stream, host=dict(window.take(), frame=f), device={"window": ring})
        if due:
            host_clips.append(host.window.assemble().copy())
            out = memory.alloc(3 * T * S * S * 4)
            assembler.enqueue(stream, host={"write": window.write}, device={"ring": ring, "clip": out})
            device_clips.append(memory.floats(out, spec.shape).copy())
    return host_clips, device_clips


@pytest.mark.parametrize("case", ["steady", "repeats", "reset", "pad"])
def test_the_device_window_assembles_the_clips_the_host_window_does(monkeypatch, case):
    rng = np.random.RandomState(1)
    frames = [rng.rand(1, 3, 2, 2).astype(np.float32) for _ in range(14)]
    slots = {"repeats": [1, 1, 3, 1, 2, 1, 1, 5, 1, 1, 1, 2, 1, 1]}.get(case, [1] * 14)
    resets = [t == 0 or (case == "reset" and t == 6) for t in range(14)]
    memory = Memory(1 << 16)
    monkeypatch.setattr("edgevid.backends.cuda.copy_dtod", lambda d, s, n, stream: memory.copy(d, s, n))
    # the upload and the frame's description are CUDA's and the library's: the pixels are the Library's here
    monkeypatch.setattr(pre.DevicePreprocess, "_upload", lambda self, image, stream: None)
    monkeypatch.setattr("edgevid.native.frame_struct", lambda image, fmt, data_ptr=None: (None, None))
    host, device = replay(memory, frames, slots, resets, pad="repeat" if case == "pad" else "none")
    assert len(host) == len(device) >= 5
    for h, d in zip(host, device):
        np.testing.assert_array_equal(h, d)


def test_a_device_window_is_never_assembled_on_the_host():
    with pytest.raises(NotImplementedError, match="on the GPU"):
        ds.DeviceClipWindow(4, 2).assemble()
