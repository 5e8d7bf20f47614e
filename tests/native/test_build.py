"""The CMake project of libedgevid_preproc: the host-only build exports the whole header and validates its
arguments, nvcc compiles the kernels for every SM of the default lists, and FindTensorRT reads a TensorRT
tree's version. No GPU is needed: what runs on one is tested elsewhere."""
from __future__ import annotations

import ctypes
import platform
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgevid.native import Frame, Geometry  # the structs as the runtime declares them
from tests.helpers import native_build
from tests.helpers.native_build import ROOT

HEADER = ROOT / "native" / "preproc" / "include" / "edgevid_preproc.h"
NO_CUDA = "this libedgevid_preproc was built without CUDA: rebuild it with nvcc (cmake/README.md)"
EVP_OK, EVP_ERR_ARGUMENT, EVP_ERR_FRAME, EVP_ERR_CUDA = 0, 1, 2, 3
EVP_BGR8, EVP_NV12 = 0, 2

needs_cmake = pytest.mark.skipif(not native_build.cmake_available(), reason="needs cmake on PATH")
needs_nvcc = pytest.mark.skipif(native_build.nvcc_path() is None, reason="needs nvcc (a CUDA toolkit)")


def header_functions():
    """The names the header declares as functions (every `evp_name(` at the start of a declaration)."""
    return sorted(set(re.findall(r"^(?:const )?\w+ \*?(evp_\w+)\(", HEADER.read_text(), re.M)))


@pytest.fixture(scope="module")
def host_library(tmp_path_factory):
    if not native_build.cmake_available():
        pytest.skip("needs cmake on PATH")
    build_dir = tmp_path_factory.mktemp("preproc-host")
    path = native_build.build_library(build_dir, cuda=False)
    lib = ctypes.CDLL(str(path))
    for name in ("evp_last_error", "evp_built_archs", "evp_status_string"):
        getattr(lib, name).restype = ctypes.c_char_p
    lib.evp_host_tensor.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                                    ctypes.c_int, ctypes.c_void_p, ctypes.c_int64]
    lib.evp_tensor.argtypes = lib.evp_host_tensor.argtypes + [ctypes.c_void_p]
    lib.build_dir = build_dir
    return lib


def frame_of(image, fmt=EVP_BGR8, uv=None):
    """An evp_frame over numpy arrays (kept alive by the caller)."""
    return Frame(fmt, image.shape[1], image.shape[0], image.ctypes.data, image.strides[0],
                 None if uv is None else uv.ctypes.data, 0 if uv is None else uv.strides[0])


def crop_status(lib, frame, geometry=Geometry(256, 224, 1), out=True, cuda=False):
    buf = np.zeros((geometry.crop, geometry.crop, 3), np.uint8)
    ptr = buf.ctypes.data_as(ctypes.c_void_p) if out else None
    if cuda:
        return lib.evp_crop(ctypes.byref(frame) if frame else None, ctypes.byref(geometry), ptr, None)
    return lib.evp_host_crop(ctypes.byref(frame) if frame else None, ctypes.byref(geometry), ptr)


def tensor_status(lib, crop_size=32, size=16, dtype=0, stride=None, cuda=False):
    crop = np.zeros((crop_size, crop_size, 3), np.uint8)
    mul, add = np.ones(3, np.float32), np.zeros(3, np.float32)
    out = np.zeros(3 * size * size, np.float32)
    args = [crop.ctypes.data, crop_size, size, mul.ctypes.data, add.ctypes.data, dtype, out.ctypes.data,
            size * size if stride is None else stride]
    return lib.evp_tensor(*args, None) if cuda else lib.evp_host_tensor(*args)


# (a) the host-only build


def test_header_declares_the_functions_the_tests_know():
    assert header_functions() == ["evp_abi_version", "evp_built_archs", "evp_check_device", "evp_crop",
                                  "evp_geometry_of", "evp_host_crop", "evp_host_tensor", "evp_last_error",
                                  "evp_status_string", "evp_tensor"]


def test_host_build_exports_every_header_function(host_library):
    missing = [name for name in header_functions() if not hasattr(host_library, name)]
    assert missing == []
    assert host_library.evp_abi_version() == 1
    assert host_library.evp_built_archs() == b"host"


def test_host_build_installs_into_the_package_by_default(host_library):
    prefix = native_build.cache_value(host_library.build_dir, "CMAKE_INSTALL_PREFIX")
    assert prefix == str(ROOT / "edgevid" / "_native")


def test_exports_nothing_but_the_header(host_library):
    nm = subprocess.run(["nm", "-D", "--defined-only", str(host_library.build_dir / native_build.LIBRARY_NAME)],
                        capture_output=True, text=True)
    if nm.returncode != 0:
        pytest.skip("needs nm (binutils)")
    exported = sorted(line.split()[-1] for line in nm.stdout.splitlines() if " T " in line)
    assert exported == header_functions()


# (d) the CUDA stubs and argument validation


def test_cuda_stubs_say_how_to_get_cuda(host_library):
    lib = host_library
    image = np.zeros((32, 48, 3), np.uint8)
    sm = ctypes.c_int(-1)
    assert lib.evp_check_device(ctypes.byref(sm)) == EVP_ERR_CUDA
    assert lib.evp_last_error().decode() == NO_CUDA
    lib.evp_geometry_of(64, 64, None, None, None, None, None)  # another message in between
    assert crop_status(lib, frame_of(image), Geometry(32, 24, 1), cuda=True) == EVP_ERR_CUDA
    assert lib.evp_last_error().decode() == NO_CUDA
    assert tensor_status(lib, cuda=True) == EVP_ERR_CUDA
    assert lib.evp_last_error().decode() == NO_CUDA


def test_stubs_validate_like_the_host_functions(host_library):
    tiny = np.zeros((8, 64, 3), np.uint8)
    assert crop_status(host_library, frame_of(tiny), cuda=True) == EVP_ERR_FRAME
    assert crop_status(host_library, frame_of(tiny)) == EVP_ERR_FRAME
    assert tensor_status(host_library, dtype=7, cuda=True) == EVP_ERR_ARGUMENT


def test_null_arguments(host_library):
    image = np.zeros((32, 32, 3), np.uint8)
    assert crop_status(host_library, None) == EVP_ERR_ARGUMENT
    assert crop_status(host_library, frame_of(image), out=False) == EVP_ERR_ARGUMENT
    no_data = frame_of(image)
    no_data.data = None
    assert crop_status(host_library, no_data) == EVP_ERR_ARGUMENT
    assert b"NULL" in host_library.evp_last_error()
    assert host_library.evp_host_tensor(None, 32, 16, None, None, 0, None, 256) == EVP_ERR_ARGUMENT


def test_frame_checks(host_library):
    lib = host_library
    assert crop_status(lib, frame_of(np.zeros((15, 64, 3), np.uint8))) == EVP_ERR_FRAME
    assert b"16x16" in lib.evp_last_error()
    short_pitch = frame_of(np.zeros((32, 32, 3), np.uint8))
    short_pitch.pitch = 32 * 3 - 1
    assert crop_status(lib, short_pitch) == EVP_ERR_FRAME
    unknown = frame_of(np.zeros((32, 32, 3), np.uint8))
    unknown.format = 9
    assert crop_status(lib, unknown) == EVP_ERR_ARGUMENT
    y, uv = np.zeros((32, 33), np.uint8), np.zeros((16, 33), np.uint8)
    assert crop_status(lib, frame_of(y, EVP_NV12, uv), Geometry(32, 24, 0)) == EVP_ERR_FRAME
    assert b"even" in lib.evp_last_error()
    assert crop_status(lib, frame_of(y[:, :32].copy(), EVP_NV12, None), Geometry(32, 24, 0)) == EVP_ERR_ARGUMENT


def test_geometry_and_tensor_checks(host_library):
    lib = host_library
    image = np.zeros((32, 32, 3), np.uint8)
    assert crop_status(lib, frame_of(image), Geometry(0, 24, 1)) == EVP_ERR_ARGUMENT
    assert crop_status(lib, frame_of(image), Geometry(32, 0, 1)) == EVP_ERR_ARGUMENT
    assert tensor_status(lib, dtype=2) == EVP_ERR_ARGUMENT
    assert b"dtype" in lib.evp_last_error()
    assert tensor_status(lib, size=0) == EVP_ERR_ARGUMENT
    assert tensor_status(lib, crop_size=0) == EVP_ERR_ARGUMENT
    assert tensor_status(lib, stride=16 * 16 - 1) == EVP_ERR_ARGUMENT
    assert tensor_status(lib) == EVP_OK and tensor_status(lib, dtype=1) == EVP_OK


def test_valid_calls_succeed(host_library):
    lib = host_library
    image = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    assert crop_status(lib, frame_of(image), Geometry(32, 24, 1)) == EVP_OK
    y, uv = np.zeros((48, 64), np.uint8), np.full((24, 64), 128, np.uint8)
    assert crop_status(lib, frame_of(y, EVP_NV12, uv), Geometry(32, 24, 0)) == EVP_OK
    out = [ctypes.c_int(-1) for _ in range(4)]
    assert lib.evp_geometry_of(640, 480, ctypes.byref(Geometry(256, 224, 1)), *map(ctypes.byref, out)) == EVP_OK
    assert [v.value for v in out] == [341, 256, 16, 58]
    assert lib.evp_status_string(EVP_ERR_FRAME).startswith(b"EVP_ERR_FRAME")


# (b) the kernels compile for every SM of the default lists


def supported_default_archs():
    lists = native_build.default_arch_lists()
    wanted = sorted(set(lists["aarch64"]) | set(lists["x86_64"]))
    return [a for a in wanted if a in native_build.nvcc_archs()]


@needs_nvcc
def test_kernels_compile_for_every_default_sm(tmp_path):
    archs = supported_default_archs()
    assert 87 in archs, "Orin's SM 8.7 must be among the default SMs this nvcc compiles for: %s" % archs
    (tmp_path / "evp_config.h").write_text('#define EVP_BUILT_ARCHS "%s"\n' % ";".join(map(str, archs)))
    src = ROOT / "native" / "preproc" / "src"
    gencode = ["-gencode=arch=compute_%d,code=sm_%d" % (a, a) for a in archs]
    command = [native_build.nvcc_path(), "-c", str(src / "preproc.cu"), "-o", str(tmp_path / "preproc.o"),
               "-I", str(HEADER.parent), "-I", str(src), "-I", str(tmp_path), "--fmad=false", "-Xcompiler=-fPIC",
               "--threads", "2", *gencode]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    cuobjdump = shutil.which("cuobjdump") or shutil.which(str(Path(native_build.nvcc_path()).with_name("cuobjdump")))
    if cuobjdump:  # where the toolkit has it, check what the object holds, not only that nvcc succeeded
        listed = subprocess.run([cuobjdump, "--list-elf", str(tmp_path / "preproc.o")], capture_output=True,
                                text=True)
        assert sorted({int(m) for m in re.findall(r"sm_(\d+)", listed.stdout)}) == archs, listed.stdout


@needs_cmake
@needs_nvcc
def test_cuda_configure_picks_the_supported_default_sms(tmp_path):
    output = native_build.configure(tmp_path, cuda=True)
    machine = "aarch64" if platform.machine().lower() in ("aarch64", "arm64") else "x86_64"
    expected = [a for a in native_build.default_arch_lists()[machine] if a in native_build.nvcc_archs()]
    assert native_build.cache_value(tmp_path, "CMAKE_CUDA_ARCHITECTURES") == ";".join(map(str, expected)), output
    if 13 <= nvcc_major() and machine == "aarch64":
        assert expected == [87]


def nvcc_major() -> int:
    text = subprocess.run([native_build.nvcc_path(), "--version"], capture_output=True, text=True).stdout
    found = re.search(r"release (\d+)\.", text)
    return int(found.group(1)) if found else 0


# (c) FindTensorRT


@needs_cmake
def test_find_tensorrt_reads_a_tensorrt_tree(tmp_path):
    trt = fake_tensorrt(tmp_path / "TensorRT-8.5.2",
                        "#define NV_TENSORRT_MAJOR 8 //!< major\n#define NV_TENSORRT_MINOR 5\n#define NV_TENSORRT_PATCH 2\n")
    assert find_tensorrt(tmp_path, trt) == "8.5.2 %s %s" % (trt / "include", trt / "lib" / "libnvinfer.so")


@needs_cmake
def test_find_tensorrt_reads_tensorrt_10_version_names(tmp_path):
    trt = fake_tensorrt(tmp_path / "TensorRT-10.3.0",
                        "#define TRT_MAJOR_ENTERPRISE 10\n#define TRT_MINOR_ENTERPRISE 3\n#define TRT_PATCH_ENTERPRISE 0\n"
                        "#define NV_TENSORRT_MAJOR TRT_MAJOR_ENTERPRISE\n#define NV_TENSORRT_MINOR TRT_MINOR_ENTERPRISE\n"
                        "#define NV_TENSORRT_PATCH TRT_PATCH_ENTERPRISE\n")
    assert find_tensorrt(tmp_path, trt).split()[0] == "10.3.0"


def fake_tensorrt(trt, version_header):
    """A TensorRT install tree: headers (NvInferVersion.h as given) and an empty libnvinfer.so."""
    (trt / "include").mkdir(parents=True)
    (trt / "lib").mkdir()
    (trt / "include" / "NvInferVersion.h").write_text(version_header)
    (trt / "include" / "NvInfer.h").write_text("#include \"NvInferVersion.h\"\n")
    (trt / "lib" / "libnvinfer.so").write_bytes(b"")
    return trt


def find_tensorrt(tmp_path, trt) -> str:
    """Configure a one-line project that finds TensorRT under trt; 'version include library' it reports."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.18)\nproject(find_trt LANGUAGES NONE)\n"
        # find_library needs a language's prefixes and suffixes; CXX would cost a compiler check per test
        'set(CMAKE_FIND_LIBRARY_PREFIXES "lib")\nset(CMAKE_FIND_LIBRARY_SUFFIXES ".so")\n'
        'list(APPEND CMAKE_MODULE_PATH "%s")\nfind_package(TensorRT REQUIRED)\n'
        'if(NOT TARGET TensorRT::nvinfer)\n  message(FATAL_ERROR "no TensorRT::nvinfer")\nendif()\n'
        'message(STATUS "TRT=${TensorRT_VERSION} ${TensorRT_INCLUDE_DIRS} ${TensorRT_LIBRARIES}")\n'
        % native_build.CMAKE_PROJECT.as_posix())
    output = native_build.run_cmake(["-S", str(project), "-B", str(tmp_path / "build"),
                                     "-DTensorRT_ROOT=%s" % trt], "configuring the FindTensorRT project")
    found = re.search(r"TRT=(.*)", output)
    assert found, output
    return found.group(1).strip()
