"""CPU preprocessing per frame at 480p, 720p and 1080p: what GPU preprocessing (libedgevid_preproc) removes.

    python benchmarks/preprocess_bench.py [--runs 200] [--threads 1 0]

For LiteEval's spec (short side 256, centre crop 224, inputs 224 and 112) on this machine's OpenCV: the resize +
crop of one decoded BGR frame, each input made from the crop (resize, normalize, CHW float32), their sum, and the
NV12 → BGR conversion a camera or hardware decoder frame needs first. With OpenCV's own threads (``--threads 0``,
its default) and one thread (the work of one core, what a pipeline stage beside others gets).
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import write_results  # noqa: E402
from edgevid.bench.timing import time_calls  # noqa: E402
from edgevid.metrics import latency_summary  # noqa: E402
from edgevid.families.liteeval import preprocess_spec  # noqa: E402
from edgevid.preprocess import Preprocessor  # noqa: E402

SOURCES = {"480p": (854, 480), "720p": (1280, 720), "1080p": (1920, 1080)}


def frame(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A camera-like BGR frame: smooth gradients and edges with noise (a flat frame would flatter the resize)."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([x / width * 200, y / height * 200, (x + y) % 97], axis=-1)
    return np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)


def measure(cv2, pre: Preprocessor, image: np.ndarray, runs: int) -> dict:
    warmup = max(3, runs // 10)
    crop = pre.crop(image)
    nv12 = cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420)  # same size as NV12; the conversion cost is the same kind
    out = {"crop": time_calls(lambda: pre.crop(image), runs, warmup)}
    for size in pre.spec.sizes:
        out["input_%d" % size] = time_calls(lambda size=size: pre.input(crop, size), runs, warmup)
    out["total"] = time_calls(lambda: pre(image), runs, warmup)
    out["yuv_to_bgr"] = time_calls(lambda: cv2.cvtColor(nv12, cv2.COLOR_YUV2BGR_I420), runs, warmup)
    return {k: latency_summary(v) for k, v in out.items()}


def library_agreement(pre: Preprocessor, image: np.ndarray) -> dict:
    """Max-abs difference in uint8 levels of libedgevid_preproc's arithmetic (its host build, the code the CUDA
    kernels run) from this path: the crop, and each input before normalization; None when it is not built."""
    from edgevid import native

    if native.find() is None:
        return {"not_measured": "%s is not built (%s)" % (native.LIB_NAME, native.BUILD)}
    lib = native.load()
    crop = pre.crop(image)
    out = {"library": lib.describe(), "crop": int(np.abs(lib.host_crop(image, pre.spec).astype(int) - crop).max())}
    mul = np.asarray(native.affine(pre.spec)[0])[None, :, None, None]
    for size in pre.spec.sizes:
        out["input_%d" % size] = float(np.abs(lib.host_tensor(crop, size, pre.spec) - pre.input(crop, size)).max()
                                       / mul.min())
    return out


def markdown(result: dict) -> str:
    lines = ["# CPU preprocessing per frame (what GPU preprocessing removes)", "",
             "Measured by `python benchmarks/preprocess_bench.py` on %s (%s; OpenCV %s); LiteEval's spec: short side "
             "%d, crop %d, inputs %s; %d runs each after a warm-up; mean ms (p99)." % (
                 result["date"], result["machine"], result["opencv"], result["spec"]["resize_short"],
                 result["spec"]["crop"], result["spec"]["sizes"], result["runs"]), "",
             "| source | OpenCV threads | resize + crop | 224 input | 112 input | all (one frame) | YUV420 → BGR first |",
             "|---|---|---|---|---|---|---|"]
    for name, by_threads in result["sources"].items():
        for threads, r in by_threads.items():
            cells = ["%.2f (%.2f)" % (r[key]["mean"], r[key]["p99"])
                     for key in ("crop", "input_224", "input_112", "total", "yuv_to_bgr")]
            lines.append("| %s | %s | %s |" % (name, threads, " | ".join(cells)))
    lines += ["", "libedgevid_preproc's arithmetic against this path (max-abs difference, uint8 levels; target <= 1):",
              ""]
    for name, agreement in result["library"].items():
        lines.append("- %s: %s" % (name, agreement.get("not_measured") or ", ".join(
            "%s %s" % (k, v) for k, v in agreement.items())))
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--threads", type=int, nargs="+", default=[0, 1], help="OpenCV threads (0: its default)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "cpu-2core"))
    args = parser.parse_args()
    import cv2

    spec = preprocess_spec()
    pre = Preprocessor(spec)
    default = cv2.getNumThreads()
    sources, library = {}, {}
    for name, (w, h) in SOURCES.items():
        image = frame(w, h)
        library[name] = library_agreement(pre, image)
        sources[name] = {}
        for threads in args.threads:
            cv2.setNumThreads(threads if threads > 0 else default)
            label = str(threads if threads > 0 else "default (%d)" % default)
            sources[name][label] = measure(cv2, pre, image, args.runs)
        cv2.setNumThreads(default)
    result = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": "%s, %d cores" % (platform.machine(), os.cpu_count()),
              "opencv": cv2.__version__, "runs": args.runs, "spec": spec.to_dict(), "sources": sources,
              "library": library}
    write_results(Path(args.out), "preprocess", result, markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
