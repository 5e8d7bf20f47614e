"""What edgevid build takes from the TensorRT backend instead of a copy of its own, checked without a GPU: the
on-device calibrator's uploads go through backends/cuda.py (over a pycuda driver that keeps "device memory" in
numpy, the only thing replaced), and best's timing runs an engine through the TrtSession API the runtime uses
(a recording session stands in for one, since no engine can run here). The real runs: test_trt.py."""
from __future__ import annotations

import contextlib
import sys
import types

import numpy as np
import pytest

from edgevid.engine_build import trt_ops
from edgevid.spec import TensorSpec


@pytest.fixture
def fake_driver(monkeypatch):
    """pycuda.driver with device memory in a dict (address -> bytes) and synchronous "async" copies."""
    memory, streams = {}, []

    class Allocation:
        def __init__(self, nbytes):
            self.address = 0x1000 * (len(memory) + 1)
            memory[self.address] = bytearray(nbytes)

        def __int__(self):
            return self.address

        def free(self):
            memory.pop(self.address)

    class Stream:
        def __init__(self):
            self.synced = 0
            streams.append(self)

        def synchronize(self):
            self.synced += 1

    def htod(device, host, stream):
        memory[int(device)][:] = np.ascontiguousarray(host).tobytes()

    driver = types.SimpleNamespace(mem_alloc=Allocation, pagelocked_empty=lambda shape, dtype: np.empty(shape, dtype),
                                   memcpy_htod_async=htod, Stream=Stream)
    package = types.ModuleType("pycuda")
    module = types.ModuleType("pycuda.driver")
    module.__dict__.update(vars(driver))
    package.driver = module
    monkeypatch.setitem(sys.modules, "pycuda", package)
    monkeypatch.setitem(sys.modules, "pycuda.driver", module)
    return memory, streams


def fake_tensorrt():
    class Calibrator:
        def __init__(self):
            pass

    return types.SimpleNamespace(IInt8EntropyCalibrator2=Calibrator, IInt8MinMaxCalibrator=Calibrator)


def test_the_feeds_calibrator_uploads_one_sample_at_a_time_through_the_backends_buffers(fake_driver):
    memory, streams = fake_driver
    feeds = {"frame": np.arange(3 * 4, dtype=np.float32).reshape(3, 4), "mask": np.ones((3, 2), np.uint8)}
    calibrator = trt_ops.make_calibrator(fake_tensorrt(), "EntropyCalibration2", None, feeds)
    assert not memory  # nothing touches the GPU before TensorRT asks for a batch
    for index in range(3):
        pointers = calibrator.get_batch(["frame", "mask"])
        assert pointers == [calibrator.buffers["frame"].ptr, calibrator.buffers["mask"].ptr]
        assert bytes(memory[pointers[0]]) == feeds["frame"][index:index + 1].tobytes()
        assert bytes(memory[pointers[1]]) == feeds["mask"][index:index + 1].tobytes()
        assert streams[0].synced == index + 1  # on the device before TensorRT reads it
    assert calibrator.get_batch(["frame", "mask"]) is None and len(memory) == 2 and len(streams) == 1
    calibrator.release()
    assert not memory and not calibrator.buffers


def test_a_cache_calibrator_gives_the_cache_and_no_batch():
    calibrator = trt_ops.make_calibrator(fake_tensorrt(), "MinMaxCalibration", b"TRT-8502-MinMaxCalibration\n", None)
    assert calibrator.get_batch(["frame"]) is None and calibrator.read_calibration_cache().startswith(b"TRT-8502")
    calibrator.release()


def test_best_times_an_engine_through_a_trt_session(monkeypatch, tmp_path):
    calls = []

    class Stream:
        def synchronize(self):
            calls.append("sync")

    class Recording:
        """The TrtSession API time_engine may use, recording what it is asked."""

        def __init__(self, path, name=None, *, dla_core=None, expected=None):
            calls.append(("new", path.name, name, dla_core, [t.name for t in expected[0]]))
            self.inputs = [TensorSpec("frame", (1, 3), "float32")]
            self.stream = Stream()

        def __enter__(self):
            calls.append("activate")
            return self

        def __exit__(self, *exc):
            calls.append("deactivate")

        @contextlib.contextmanager
        def thread_context(self):
            calls.append("push")
            yield
            calls.append("pop")

        def infer(self, feeds):
            calls.append(("infer", {n: (a.shape, str(a.dtype), float(np.abs(a).sum())) for n, a in feeds.items()}))

        def device_ptr(self, name):
            return 0xbeef

        def enqueue(self, stream=None, *, host=None, device=None, fetch=()):
            calls.append(("enqueue", host, device, tuple(fetch)))

    monkeypatch.setattr(trt_ops, "TrtSession", Recording)
    declared = ([TensorSpec("frame", (1, 3), "float32")], [TensorSpec("feat", (1, 8), "float32")])
    ms = trt_ops.time_engine(tmp_path / "fine_cnn.fp16.trt8.5.sm72.dla0.engine", "fine_cnn", declared, dla_core=0,
                             runs=4, warmup=2)
    assert ms >= 0
    assert calls[:4] == [("new", "fine_cnn.fp16.trt8.5.sm72.dla0.engine", "fine_cnn", 0, ["frame"]), "activate",
                         "push", ("infer", {"frame": ((1, 3), "float32", 0.0)})]  # zeros, copied once
    assert calls[4:-2] == [("enqueue", None, {"frame": 0xbeef}, ()), "sync"] * 6  # warm-up + runs, on the device
    assert calls[-2:] == ["pop", "deactivate"]
