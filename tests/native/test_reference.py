"""libedgevid_preproc's arithmetic (its host build: the same code the CUDA kernels run) against the runtime's
Python preprocessing (edgevid/preprocess.py, OpenCV) on decoded frames of several sizes and aspect ratios, through
edgevid.native, the loader the runtime uses. Target: at most 1/255 apart before normalization."""
from __future__ import annotations

import numpy as np
import pytest

from edgevid import native
from edgevid.errors import DependencyError, FrameError
from edgevid.families import liteeval, prernn
from edgevid.preprocess import Preprocessor
from edgevid.spec import PreprocessSpec
from tests.helpers import native_build

cv2 = pytest.importorskip("cv2")

# (height, width): camera sizes, portrait, odd, no resize at all, and frames smaller than the short side (enlarged)
SIZES = [(480, 854), (720, 1280), (1080, 1920), (640, 360), (333, 517), (256, 256), (200, 180), (131, 97)]
SPECS = {"liteeval": liteeval.preprocess_spec(), "prernn-bgr": PreprocessSpec(resize_short=72, crop=64, sizes=(64, 32),
                                                                              color="BGR")}


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    if not native_build.cmake_available():
        pytest.skip("needs cmake on PATH")
    return native.load(native_build.build_library(tmp_path_factory.mktemp("preproc-ref"), cuda=False))


def decoded(height, width, seed=0):
    """A JPEG-decoded camera-like frame: gradients, edges, texture, then the codec's own artefacts."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.stack([x * 255 / width, y * 255 / height, 128 + 100 * np.sin(x / 7.0) * np.cos(y / 5.0)], -1)
    image[(x // 37 + y // 29) % 2 == 0] *= 0.5
    image = np.clip(image + rng.normal(0, 10, image.shape), 0, 255).astype(np.uint8)
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return cv2.imdecode(jpeg, cv2.IMREAD_COLOR)


def nv12_of(bgr):
    """The NV12 buffer of a frame ((H·3/2)×W: Y, then interleaved U,V), as a hardware decoder hands it over."""
    h, w = bgr.shape[:2]
    i420 = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420).reshape(-1)
    y, u, v = i420[:h * w], i420[h * w:h * w * 5 // 4], i420[h * w * 5 // 4:]
    uv = np.stack([u, v], -1).reshape(h // 2, w)
    return np.concatenate([y.reshape(h, w), uv], 0)


def levels(a, b, spec):
    """The largest difference of two normalized inputs in uint8 levels (undoing the multiply per channel)."""
    mul = np.asarray(native.affine(spec)[0], np.float64)[None, :, None, None]
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)) / mul))


@pytest.mark.parametrize("spec_name", sorted(SPECS))
@pytest.mark.parametrize("size", SIZES, ids=["%dx%d" % s[::-1] for s in SIZES])
def test_the_library_prepares_a_frame_as_the_cpu_path_does(lib, spec_name, size):
    spec = SPECS[spec_name]
    frame = decoded(*size)
    pre = Preprocessor(spec)
    crop = lib.host_crop(frame, spec)
    reference = pre.crop(frame)
    diff = int(np.max(np.abs(crop.astype(int) - reference.astype(int))))
    assert diff <= 1, "crop of %s: max-abs %d levels" % (size, diff)
    for s in spec.sizes:
        got = lib.host_tensor(reference, s, spec)  # the tensor step alone, from the same crop
        assert got.shape == (1, 3, s, s) and got.dtype == np.float32
        assert levels(got, pre.input(reference, s), spec) <= 1.0 + 1e-4, (size, s)


@pytest.mark.parametrize("size", [(480, 854), (1080, 1920), (222, 334)], ids=["480p", "1080p", "222x334"])
def test_nv12_frames_are_converted_as_opencv_does(lib, size):
    spec = SPECS["liteeval"]
    nv12 = nv12_of(decoded(*size))
    reference = Preprocessor(spec).crop(cv2.cvtColor(nv12, cv2.COLOR_YUV2BGR_NV12))
    diff = int(np.max(np.abs(lib.host_crop(nv12, spec, "nv12").astype(int) - reference.astype(int))))
    assert diff <= 1, diff


def test_float16_inputs_are_the_float32_ones_rounded(lib):
    spec = SPECS["liteeval"]
    crop = Preprocessor(spec).crop(decoded(720, 1280))
    half = lib.host_tensor(crop, 112, spec, "float16")
    assert half.dtype == np.float16
    np.testing.assert_array_equal(half, lib.host_tensor(crop, 112, spec).astype(np.float16))


def test_geometry_is_the_cpu_paths(lib):
    spec = SPECS["liteeval"]
    assert lib.geometry(1920, 1080, spec) == (455, 256, 16, 115)  # round(1920·256/1080) = 455
    assert lib.geometry(180, 200, spec) == (256, 284, 30, 16)  # enlarged: short side 180 -> 256


def test_bad_frames_are_refused_with_what_to_pass(lib):
    spec = SPECS["liteeval"]
    with pytest.raises(FrameError, match="even width and height"):
        lib.host_crop(np.zeros((33 * 3 // 2 + 1, 33), np.uint8)[:48], spec, "nv12")  # 32 rows: width 33 is odd
    with pytest.raises(FrameError, match="shape"):
        lib.host_crop(np.zeros((64, 64, 4), np.uint8), spec)
    with pytest.raises(FrameError, match="uint8"):
        lib.host_crop(np.zeros((64, 64, 3), np.float32), spec)
    with pytest.raises(FrameError):
        lib.host_crop(np.zeros((8, 8, 3), np.uint8), spec)


def test_the_host_build_says_it_has_no_cuda(lib):
    assert not lib.has_cuda and lib.archs == "host" and "host only" in lib.describe()


def test_a_missing_library_says_how_to_build_it(tmp_path, monkeypatch):
    monkeypatch.setenv(native.ENV, str(tmp_path / "nowhere.so"))
    monkeypatch.setattr(native, "candidates", lambda: [tmp_path / "nowhere.so"])
    with pytest.raises(DependencyError, match="not built") as e:
        native.load()
    assert "cmake -S cmake -B build/native" in str(e.value)


def test_prernn_spec_is_a_spec_the_library_takes(lib):
    spec = prernn.preprocess_spec(64)
    frame = decoded(480, 640)
    assert levels(lib.host_tensor(lib.host_crop(frame, spec), spec.sizes[0], spec),
                  Preprocessor(spec)(frame)[spec.sizes[0]], spec) <= 1.0 + 1e-4
