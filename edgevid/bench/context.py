"""The machine a benchmark ran on (CPU, libraries, on a Jetson its release, power mode and clocks) and its measured
float32 matmul peak, the yardstick of every "share of peak" figure (docs/bench.md §2).

Every reading has a fallback: a figure that cannot be read is recorded as "unavailable: why", never left out
or guessed. Heavy packages are imported inside the functions that need them.
"""
from __future__ import annotations

import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from .._optional import available

# CPU features that decide which GEMM kernels run (x86 vector and VNNI units, Arm dot-product and fp16)
FLAGS_OF_INTEREST = ("avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "neon", "asimd",
                     "asimddp", "fphp", "asimdhp", "sve")
LIBRARIES = ("numpy", "onnxruntime", "onnx", "cv2", "tensorrt", "pycuda")
TEGRA_RELEASE = Path("/etc/nv_tegra_release")
PEAK_N = 2048  # large enough that the GEMM, not the call, is timed; ORT's conv kernels can beat a smaller MatMul


def unavailable(why: Any) -> str:
    return "unavailable: %s" % (why,)


def machine_context() -> Dict[str, Any]:
    """CPU, Python and library versions, and the Jetson's state where there is one (``jetson`` says why not)."""
    return {"cpu": cpu_info(), "python": platform.python_version(), "platform": platform.platform(),
            "libraries": library_versions(), "jetson": jetson_info()}


def cpu_info(cpuinfo: Path = Path("/proc/cpuinfo")) -> Dict[str, Any]:
    """Model, logical cores (all and usable by this process) and the flags of interest."""
    out: Dict[str, Any] = {"machine": platform.machine(), "cores": os.cpu_count()}
    out["usable_cores"] = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else out["cores"]
    try:
        fields = _cpuinfo_fields(cpuinfo.read_text())
    except OSError as e:
        out["model"] = out["flags"] = unavailable(e)
        return out
    # x86 says "model name"; Arm kernels give no name, only the implementer and part numbers
    out["model"] = fields.get("model name") or fields.get("hardware") or (
        "arm implementer %s part %s" % (fields["cpu implementer"], fields.get("cpu part", "?"))
        if "cpu implementer" in fields else unavailable("no model name in %s" % cpuinfo))
    flags = set((fields.get("flags") or fields.get("features") or "").split())
    out["flags"] = [f for f in FLAGS_OF_INTEREST if f in flags]
    return out


def _cpuinfo_fields(text: str) -> Dict[str, str]:
    """The first value of each key of /proc/cpuinfo (keys lower-cased)."""
    fields: Dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip().lower(), value.strip())
    return fields


def library_versions() -> Dict[str, str]:
    """The version of each library of interest, or why there is none; only installed ones are imported."""
    out = {}
    for name in LIBRARIES:
        if not available(name):
            out[name] = unavailable("not installed")
            continue
        try:
            out[name] = str(getattr(__import__(name), "__version__", unavailable("no __version__")))
        except Exception as e:  # a broken install (a missing CUDA library) is a fact to report, not a crash
            out[name] = unavailable("import failed: %s" % (e,))
    return out


def jetson_info(release: Path = TEGRA_RELEASE) -> Dict[str, Any]:
    """L4T release, JetPack package version, power mode, clocks and GPU on a Jetson; on any other machine one line
    saying it is not one."""
    if not release.is_file():
        return {"not_a_jetson": "%s does not exist" % release}
    return {"l4t": _read(release), "jetpack": _command(["dpkg-query", "--show", "--showformat=${Version}",
                                                        "nvidia-jetpack"]),
            "power_mode": _command(["nvpmodel", "-q"]),
            "clocks": _command(["jetson_clocks", "--show"]), "gpu": _gpu_name()}


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError as e:
        return unavailable(e)


def _command(argv: List[str]) -> str:
    """The stripped stdout of ``argv``, or why there is none (missing tool, needs root, timeout)."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as e:
        return unavailable("%s: %s" % (argv[0], e))
    if done.returncode != 0:
        return unavailable("%s exited %d: %s" % (" ".join(argv), done.returncode, done.stderr.strip()[:200]))
    return done.stdout.strip()


def _gpu_name() -> str:
    if not (available("pycuda") and available("tensorrt")):
        return unavailable("pycuda or tensorrt not installed")
    try:
        from ..backends.trt import current_device

        return current_device().describe()
    except Exception as e:  # no driver, no GPU: report it
        return unavailable(e)


# matmul peak ---------------------------------------------------------------------------------------------
def matmul_peak(n: int = PEAK_N, reps: int = 5, threads: int = 0) -> Dict[str, Any]:
    """GFLOP/s (2·n³ per product) of float32 n×n matmul by numpy and by ONNX Runtime's MatMul (best of ``reps``
    each, ``threads`` intra-op threads, 0: all), and ``peak_gflops``, the best of them: each library ships its own
    GEMM and ONNX Runtime's conv kernels can beat its own MatMul, so one figure alone would understate the peak.
    Also ``int8_peak_gops`` (:func:`int8_peak`)."""
    import numpy as np

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32)
    out: Dict[str, Any] = {"n": n, "threads": threads or os.cpu_count(), "reps": reps,
                           "numpy_gflops": 2.0 * n ** 3 / best_seconds(lambda: np.matmul(a, b), reps) / 1e9}
    try:
        out["onnxruntime_gflops"] = 2.0 * ort_matmul_rate(n, "MatMul", threads, reps)
    except Exception as e:  # onnx or onnxruntime missing or broken: the numpy figure still stands
        out["onnxruntime_gflops"] = unavailable(e)
    rates = {k[:-len("_gflops")]: v for k, v in out.items() if k.endswith("_gflops") and isinstance(v, float)}
    out["peak_by"] = max(rates, key=rates.get)
    out["peak_gflops"] = rates[out["peak_by"]]
    out["int8_peak_gops"] = int8_peak(n, reps, threads)
    return out


def int8_peak(n: int = PEAK_N, reps: int = 5, threads: int = 0) -> Any:
    """GOP/s (2·n³ per product) of ONNX Runtime's u8×s8 MatMulInteger, the kernel of the CPU INT8 form: what an
    INT8 graph's rate is measured against (integer units do several times the float32 work per cycle)."""
    try:
        return 2.0 * ort_matmul_rate(n, "MatMulInteger", threads, reps)
    except Exception as e:  # onnx or onnxruntime missing or broken
        return unavailable(e)


def ort_matmul_rate(n: int, op: str = "MatMul", threads: int = 0, reps: int = 5) -> float:
    """GMAC/s (n³ per product, best of ``reps``) of ONNX Runtime's ``op`` on n×n matrices: "MatMul" (float32) or
    "MatMulInteger" (u8 × s8, the kernel of the CPU INT8 form)."""
    import numpy as np

    from ..backends.ort import OrtSession

    rng = np.random.default_rng(0)
    integer = op == "MatMulInteger"
    feeds = {"a": (rng.integers(0, 100, (n, n)).astype(np.uint8) if integer
                   else rng.standard_normal((n, n), dtype=np.float32)),
             "b": (rng.integers(-50, 50, (n, n)).astype(np.int8) if integer
                   else rng.standard_normal((n, n), dtype=np.float32))}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "matmul.onnx"
        path.write_bytes(_matmul_model(n, op))
        with OrtSession(path, "matmul", threads=threads) as session:
            session.infer(feeds)  # warm: the first run allocates
            best = best_seconds(lambda: session.infer(feeds), reps)
    return n ** 3 / best / 1e9


def _matmul_model(n: int, op: str) -> bytes:
    """A one-node ONNX graph y = op(a, b) (onnx builds it: the package is needed for this figure only)."""
    from onnx import TensorProto, helper

    integer = op == "MatMulInteger"
    types = (TensorProto.UINT8, TensorProto.INT8, TensorProto.INT32) if integer else (TensorProto.FLOAT,) * 3
    io = [helper.make_tensor_value_info(name, t, [n, n]) for name, t in zip("aby", types)]
    graph = helper.make_graph([helper.make_node(op, ["a", "b"], ["y"])], "matmul", io[:2], io[2:])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by every onnxruntime edgevid supports
    return model.SerializeToString()


def best_seconds(fn: Callable[[], Any], reps: int) -> float:
    """The fastest of ``reps`` timed calls of ``fn`` in seconds (after one untimed call)."""
    fn()
    best: Optional[float] = None
    for _ in range(max(1, reps)):
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        best = elapsed if best is None else min(best, elapsed)
    return float(best)
