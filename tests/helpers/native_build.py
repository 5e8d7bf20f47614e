"""Builds libedgevid_preproc with the repository's CMake project (cmake/CMakeLists.txt) for the tests: into a
folder of the test's own, never installed into edgevid/_native, so a test never replaces a user's library."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import List, Optional, Sequence

ROOT = Path(__file__).resolve().parents[2]
CMAKE_PROJECT = ROOT / "cmake"
LIBRARY_NAME = "libedgevid_preproc.so"
# the CUDA build's first configure identifies nvcc (tens of seconds on 2 cores); compiles take as long again
TIMEOUT_S = 600


class NativeBuildError(RuntimeError):
    """cmake failed: the message ends with its output."""


def cmake_available() -> bool:
    return shutil.which("cmake") is not None


def nvcc_path() -> Optional[str]:
    found = shutil.which("nvcc")
    if found:
        return found
    default = Path("/usr/local/cuda/bin/nvcc")
    return str(default) if default.exists() else None


def nvcc_archs() -> List[int]:
    """The SMs this machine's nvcc compiles for (``nvcc --list-gpu-arch``), ascending; [] without nvcc."""
    nvcc = nvcc_path()
    if nvcc is None:
        return []
    try:
        listed = subprocess.run([nvcc, "--list-gpu-arch"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return sorted({int(m) for m in re.findall(r"compute_(\d+)", listed)})


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


def run_cmake(args: Sequence[str], what: str) -> str:
    """One cmake call; its output, or NativeBuildError with the tail of it."""
    env = dict(os.environ)
    nvcc = nvcc_path()
    if nvcc and not shutil.which("nvcc"):
        env["CUDACXX"] = nvcc
    try:
        done = subprocess.run(["cmake", *args], capture_output=True, text=True, timeout=TIMEOUT_S, env=env)
    except subprocess.TimeoutExpired as e:
        raise NativeBuildError("%s: cmake ran over %d s" % (what, TIMEOUT_S)) from e
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise NativeBuildError("%s failed (cmake exit %d):\n%s" % (what, done.returncode, _tail(output)))
    return output


def configure(build_dir: Path, cuda: bool, cmake_args: Sequence[str] = ()) -> str:
    """cmake's configure step of the project into build_dir; its output."""
    args = ["-S", str(CMAKE_PROJECT), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release",
            "-DEDGEVID_WITH_CUDA=%s" % ("ON" if cuda else "OFF"), *cmake_args]
    return run_cmake(args, "configuring %s" % build_dir)


def build_library(build_dir, cuda: bool, cmake_args: Sequence[str] = ()) -> Path:
    """Configure and build libedgevid_preproc in build_dir (host-only when ``cuda`` is False); the .so's path."""
    build_dir = Path(build_dir)
    configure(build_dir, cuda, cmake_args)
    run_cmake(["--build", str(build_dir), "--parallel", str(os.cpu_count() or 2)], "building %s" % build_dir)
    library = build_dir / LIBRARY_NAME
    if not library.is_file():
        raise NativeBuildError("cmake built %s but there is no %s in it" % (build_dir, LIBRARY_NAME))
    return library


def cache_value(build_dir, name: str) -> Optional[str]:
    """A variable of build_dir's CMakeCache.txt (None when absent)."""
    for line in (Path(build_dir) / "CMakeCache.txt").read_text().splitlines():
        key, _, value = line.partition("=")
        if key.split(":")[0] == name:
            return value
    return None


def default_arch_lists() -> dict:
    """The project's default SM lists by machine, as cmake/CMakeLists.txt sets them."""
    text = (CMAKE_PROJECT / "CMakeLists.txt").read_text()
    lists = {}
    for key, name in (("aarch64", "EDGEVID_JETSON_ARCHS"), ("x86_64", "EDGEVID_DESKTOP_ARCHS")):
        found = re.search(r"set\(%s ([0-9 ]+)\)" % name, text)
        if found is None:
            raise AssertionError("cmake/CMakeLists.txt no longer sets %s" % name)
        lists[key] = [int(a) for a in found.group(1).split()]
    return lists
