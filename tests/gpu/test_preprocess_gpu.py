"""libedgevid_preproc's CUDA kernels on a real GPU (skipped without one, never faked): built here with CMake for this
GPU's SM, driven through the runtime's own DevicePreprocess over real pycuda memory and streams; the device's
bytes against the host build of the same arithmetic (bit for bit) and the CPU path (OpenCV, at most one level);
the time per 1080p frame for both LiteEval inputs; a pointer of the host and a library without this SM refused.
With TensorRT as well: the LiteEval, PreRNN and SlowFast fixture bundles streamed on engines with GPU preprocessing
as with the CPU's (SlowFast's clip window then on the device)."""
from __future__ import annotations

import time

import numpy as np
import pytest

from edgevid.spec import TensorSpec
from tests.backends.test_cuda_gpu import driver
from tests.helpers import native_build

pytestmark = pytest.mark.gpu
cv2 = pytest.importorskip("cv2")

SIZES = {"480p": (480, 854), "720p": (720, 1280), "1080p": (1080, 1920), "odd": (333, 517)}


@pytest.fixture(scope="module")
def sm():
    cuda = driver()
    major, minor = cuda.Device(0).compute_capability()
    return major * 10 + minor


@pytest.fixture(scope="module")
def gpu_library(tmp_path_factory, sm):
    from edgevid import native

    if not native_build.cmake_available() or native_build.nvcc_path() is None:
        pytest.skip("needs cmake and nvcc to build the library for this GPU")
    path = native_build.build_library(tmp_path_factory.mktemp("preproc-gpu"), cuda=True,
                                      cmake_args=["-DCMAKE_CUDA_ARCHITECTURES=%d" % sm])
    return native.load(path)


def frame(height, width, seed=0):
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.stack([x * 255 / width, y * 255 / height, 128 + 100 * np.sin(x / 7.0) * np.cos(y / 5.0)], -1)
    return np.clip(image + rng.normal(0, 10, image.shape), 0, 255).astype(np.uint8)


def nv12_of(bgr):
    h, w = bgr.shape[:2]
    i420 = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420).reshape(-1)
    u, v = i420[h * w:h * w * 5 // 4], i420[h * w * 5 // 4:]
    return np.concatenate([i420[:h * w].reshape(h, w), np.stack([u, v], -1).reshape(h // 2, w)], 0)


def outputs(dtype="float32"):
    return {"coarse": TensorSpec("coarse", (1, 3, 112, 112), dtype), "fine": TensorSpec("fine", (1, 3, 224, 224), dtype)}


def run_on_device(library, image, fmt="bgr", dtype="float32"):
    """DevicePreprocess on a real stream into real device buffers; the two inputs copied back."""
    from edgevid.backends import cuda
    from edgevid.families.liteeval import preprocess_spec
    from edgevid.runtime.device.preprocess import DevicePreprocess

    with cuda.pushed(0):
        pre = DevicePreprocess(preprocess_spec(), outputs(dtype), library, fmt=fmt).activate()
        stream = cuda.new_stream()
        bufs = {t.name: cuda.Pinned(t.shape, t.dtype) for t in pre.outputs}
        pre.enqueue(stream, host={"frame": image}, device={n: b.ptr for n, b in bufs.items()})
        for b in bufs.values():
            b.to_host(stream)
        stream.synchronize()
        got = {n: np.array(b.host) for n, b in bufs.items()}
        pre.deactivate()
        return got


@pytest.mark.parametrize("name", sorted(SIZES))
@pytest.mark.parametrize("fmt", ["bgr", "nv12"])
def test_the_device_writes_what_the_host_arithmetic_and_the_cpu_path_write(gpu_library, name, fmt):
    from edgevid.families.liteeval import preprocess_spec
    from edgevid.preprocess import Preprocessor

    spec = preprocess_spec()
    bgr = frame(*SIZES[name])
    image = nv12_of(bgr) if fmt == "nv12" else bgr
    got = run_on_device(gpu_library, image, fmt)
    crop = gpu_library.host_crop(image, spec, fmt)
    cpu = Preprocessor(spec)
    reference = cpu.crop(cv2.cvtColor(image, cv2.COLOR_YUV2BGR_NV12) if fmt == "nv12" else image)
    mul = float(np.min(np.asarray(cpu._mul)))
    for role, size in (("coarse", 112), ("fine", 224)):
        np.testing.assert_array_equal(got[role], gpu_library.host_tensor(crop, size, spec))  # bit-exact
        assert float(np.abs(got[role] - cpu.input(reference, size)).max()) / mul <= 1.0 + 1e-4


def test_float16_inputs_are_bit_exact_too(gpu_library):
    from edgevid.families.liteeval import preprocess_spec

    spec = preprocess_spec()
    image = frame(720, 1280)
    got = run_on_device(gpu_library, image, dtype="float16")
    crop = gpu_library.host_crop(image, spec)
    np.testing.assert_array_equal(got["fine"], gpu_library.host_tensor(crop, 224, spec, "float16"))


def test_time_per_1080p_frame_for_both_liteeval_inputs(gpu_library, capsys):
    from edgevid import native
    from edgevid.backends import cuda
    from edgevid.families.liteeval import preprocess_spec
    from edgevid.runtime.device.preprocess import DevicePreprocess

    image, runs = frame(1080, 1920), 200
    with cuda.pushed(0):
        pre = DevicePreprocess(preprocess_spec(), outputs(), gpu_library).activate()
        stream = cuda.new_stream()
        bufs = {t.name: cuda.DeviceBuffer(int(np.prod(t.shape)) * 4) for t in pre.outputs}
        device = {n: b.ptr for n, b in bufs.items()}
        for _ in range(10):
            pre.enqueue(stream, host={"frame": image}, device=device)
        stream.synchronize()
        start, end = cuda.new_event(), cuda.new_event()
        wall = time.perf_counter()
        start.record(stream)
        for _ in range(runs):
            pre.enqueue(stream, host={"frame": image}, device=device)
        end.record(stream)
        end.synchronize()
        wall_ms = (time.perf_counter() - wall) * 1000.0 / runs
        gpu_ms = start.time_till(end) / runs
        # the kernels alone, on the frame already on the device
        frame_struct, _ = native.frame_struct(image, "bgr", pre._frame.ptr)
        start.record(stream)
        for _ in range(runs):
            gpu_library.crop(frame_struct, pre.spec, pre._crop.ptr, stream.handle)
            for t in pre.outputs:
                gpu_library.tensor(pre._crop.ptr, pre.spec, t.shape[-1], "float32", device[t.name], t.shape[-1] ** 2,
                                   stream.handle)
        end.record(stream)
        end.synchronize()
        kernels_ms = start.time_till(end) / runs
        pre.deactivate()
    with capsys.disabled():
        print("\nGPU preprocessing, 1080p BGR frame -> 224 + 112 inputs: %.3f ms per frame on the stream (upload + "
              "kernels), %.3f ms host wall per frame, %.3f ms kernels alone" % (gpu_ms, wall_ms, kernels_ms))
    assert 0 < kernels_ms <= gpu_ms


def test_a_host_pointer_as_output_is_another_contexts_memory(gpu_library):
    from edgevid.backends import cuda
    from edgevid.errors import SessionError
    from edgevid.families.liteeval import preprocess_spec
    from edgevid.runtime.device.preprocess import DevicePreprocess

    host = np.zeros((1, 3, 112, 112), np.float32)
    with cuda.pushed(0):
        pre = DevicePreprocess(preprocess_spec(), outputs(), gpu_library).activate()
        with pytest.raises(SessionError, match="another CUDA context"):
            pre.enqueue(cuda.new_stream(), host={"frame": frame(480, 640)}, device={"coarse": host.ctypes.data})
        pre.deactivate()


def test_a_library_without_this_gpus_sm_says_rebuild_for_it(tmp_path, sm):
    from edgevid import native
    from edgevid.backends import cuda
    from edgevid.errors import BuildError

    if native_build.nvcc_path() is None:
        pytest.skip("needs nvcc")
    other = next(a for a in native_build.nvcc_archs() if a != sm)
    path = native_build.build_library(tmp_path, cuda=True, cmake_args=["-DCMAKE_CUDA_ARCHITECTURES=%d-real" % other])
    with cuda.pushed(0), pytest.raises(BuildError, match="rebuild it for this GPU's SM"):
        native.load(path).check_device()


@pytest.mark.trt
@pytest.mark.parametrize("fixture", ["liteeval", "prernn", "slowfast"])
def test_streams_on_engines_with_gpu_preprocessing_as_with_the_cpus(tmp_path, gpu_library, monkeypatch, fixture):
    from edgevid.bundle import load_bundle
    from edgevid.runtime import StreamRuntime
    from tests.backends.test_cuda_gpu import add_fp32_engines
    from tests.helpers.bundles import CLIP, LITEEVAL, PRERNN, copy_bundle

    monkeypatch.setenv("EDGEVID_PREPROC_LIB", str(gpu_library.path))
    trt = pytest.importorskip("tensorrt")
    name = {"liteeval": LITEEVAL["mixed"], "prernn": PRERNN["lstm"], "slowfast": CLIP}[fixture]
    bundle = add_fp32_engines(trt, load_bundle(copy_bundle(name, tmp_path / "b")))
    runs = {}
    for where in ("cpu", "gpu"):
        with StreamRuntime(bundle, "trt", precision="fp32", queue_size=2, preprocess=where) as runtime:
            runs[where] = [(p.label, p.path) for p in runtime.run("synthetic:seed=3,frames=24")]
        assert runtime.stats.to_dict()["preprocess"]["where"] == where
    assert runs["gpu"] == runs["cpu"] and len(runs["cpu"]) == 24
