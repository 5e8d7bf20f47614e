"""The CPU runtime at its limit: LiteEval streamed sequentially and pipelined vs what its work costs alone.

    python benchmarks/cpu_runtime_bench.py [--bundle DIR] [--baseline [LABEL=]REV …] [--rounds 7] [--work DIR] [--out DIR]

The LiteEval demo bundle (made here with ``edgevid demo`` unless ``--bundle`` names one) streams a
640×272 MJPG video (the synthetic stream, resized) through ``run_stream``, the code path of ``edgevid
run``, with the runtime's default threads. Every round is one child process that measures, side by
side and in this order:

- the work alone, one piece at a time: decoding a frame (the runtime's file source), preprocessing it
  (crop + the coarse input on every frame, the fine input on fine frames), and each graph on plain
  ONNX Runtime at 1..cores intra-op threads (its own defaults otherwise);
- the stream sequentially and pipelined, and each graph's latency inside them (stats ``stages_ms``).

From the same round::

    sequential limit = 1 / (decode + pre_coarse + fine_rate·pre_fine + coarse graphs + fine_rate·fine graphs)
                       (each piece at its best thread count: OpenCV 1 or its default, graphs 1..cores)
    two-core limit   = cores / (the same sum with every piece at one thread)

``--baseline [LABEL=]REV …`` streams the code of each git revision REV (its ``edgevid/`` unpacked into the
work folder) in the same rounds, alternating with this checkout's ("after"), so before and after see
the same machine load. Figures are medians over rounds (ratios: median of the per-round ratios). Writes
``cpu_runtime.json`` and ``cpu_runtime.md`` into ``--out``.
"""
from __future__ import annotations

import argparse
import functools
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEGMENTS, SEGMENT_FRAMES, FPS, SEED = 60, 8, 10.0, 2000  # 480 frames; seed: the demo's held-out stream
SIZE = (640, 272)
TARGETS = {"sequential": 0.8, "pipelined": 0.85, "speedup": 1.6}


# parent ------------------------------------------------------------------------------------------
def make_video(path: Path) -> Path:
    """The synthetic stream resized to 640×272, MJPG: decoding costs what a real camera file does."""
    import cv2

    sys.path.insert(0, str(ROOT))
    from edgevid.data.synthetic import SyntheticStream

    if path.is_file():
        return path
    tmp = path.with_suffix(".tmp.avi")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"MJPG"), FPS, SIZE)
    if not writer.isOpened():
        raise SystemExit("OpenCV cannot write MJPG video here")
    for image in SyntheticStream(SEGMENTS, SEGMENT_FRAMES, FPS, seed=SEED):
        writer.write(cv2.resize(image, SIZE, interpolation=cv2.INTER_LINEAR))
    writer.release()
    tmp.replace(path)
    return path


def make_bundle(work: Path) -> Path:
    sys.path.insert(0, str(ROOT))
    from edgevid.demo import run_demo

    out = work / "demo"
    if not (out / "bundle").is_dir():
        run_demo(out, model="liteeval", overwrite=True)
    return out / "bundle"


def baseline_code(work: Path, rev: str) -> Path:
    """``edgevid/`` of git revision ``rev``, unpacked into ``work/code-<rev>`` (once)."""
    sha = subprocess.run(["git", "rev-parse", "--short", rev], cwd=str(ROOT), check=True, capture_output=True,
                         text=True).stdout.strip()
    dest = work / ("code-" + sha)
    if not (dest / "edgevid").is_dir():
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", sha, "edgevid"], cwd=str(ROOT), check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


def run_child(code: Path, bundle: Path, video: Path, reps: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", str(code), "--bundle", str(bundle),
                          "--video", str(video), "--reps", str(reps)], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit("measuring %s failed:\n%s" % (code, out.stderr[-4000:]))
    return json.loads(out.stdout.strip().splitlines()[-1])


def median_of(rounds: list, *keys):
    values = []
    for r in rounds:
        for k in keys:
            r = r.get(k) if isinstance(r, dict) else None
        if r is not None:
            values.append(r)
    return statistics.median(values) if values else None


def summarise(rounds: list) -> dict:
    """Medians over rounds of every figure the tables show."""
    m = {"rounds": len(rounds)}
    for key in ("fine_rate", "decode_ms", "pre_coarse_ms", "pre_fine_ms", "seq_limit_fps", "two_core_limit_fps",
                "inference_two_core_limit_fps", "seq_ratio", "pipe_ratio", "speedup"):
        m[key] = median_of(rounds, key)
    for mode in ("sequential", "pipelined"):
        m[mode] = {"fps": median_of(rounds, mode, "fps"),
                   "latency_p50_ms": median_of(rounds, mode, "latency_ms", "p50"),
                   "stages_p50_ms": {s: median_of(rounds, mode, "stages_ms", s, "p50")
                                     for s in rounds[0][mode]["stages_ms"]}}
    m["opencv_ms"] = {t: {k: median_of(rounds, "opencv_ms", t, k) for k in ms} for t, ms in rounds[0]["opencv_ms"].items()}
    m["alone_ms"] = {role: {t: median_of(rounds, "alone_ms", role, t) for t in rounds[0]["alone_ms"][role]}
                     for role in rounds[0]["alone_ms"]}
    return m


def markdown(r: dict) -> str:
    codes = list(r["codes"])
    s = {c: r["codes"][c]["summary"] for c in codes}

    def row(name, fmt, get):
        return "| %s | %s |" % (name, " | ".join(fmt % get(s[c]) if get(s[c]) is not None else "–" for c in codes))

    lines = ["# The CPU runtime at its limit: LiteEval on %s" % r["machine"]["description"], "",
             "Measured by `%s` on %s (onnxruntime %s, OpenCV %s). %d rounds; each round measures the work alone "
             "and then streams it, in one process, the codes alternating; figures are medians over rounds." % (
                 r["command"], r["date"], r["machine"]["onnxruntime"], r["machine"]["opencv"], r["rounds"]), "",
             "Bundle: the LiteEval demo (MobileNetV2 @112 coarse, ResNet-18 @224 fine); source: %d frames of "
             "640×272 MJPG (%s). Fine model on %.1f%% of frames." % (
                 r["video"]["frames"], r["video"]["path"], 100 * s[codes[-1]]["fine_rate"]), "",
             "| | %s |" % " | ".join("%s (%s)" % (c, r["codes"][c]["code"]) for c in codes),
             "|---|%s" % ("---|" * len(codes)),
             row("sequential FPS", "%.1f", lambda x: x["sequential"]["fps"]),
             row("sequential limit FPS", "%.1f", lambda x: x["seq_limit_fps"]),
             row("sequential / limit (target ≥ %.2f)" % TARGETS["sequential"], "%.2f", lambda x: x["seq_ratio"]),
             row("pipelined FPS", "%.1f", lambda x: x["pipelined"]["fps"]),
             row("two-core limit FPS (decode + preprocess included)", "%.1f", lambda x: x["two_core_limit_fps"]),
             row("pipelined / two-core limit (target ≥ %.2f)" % TARGETS["pipelined"], "%.2f",
                 lambda x: x["pipe_ratio"]),
             row("two-core limit FPS, inference only", "%.1f", lambda x: x["inference_two_core_limit_fps"]),
             row("pipelined / sequential (target ≥ %.1f)" % TARGETS["speedup"], "%.2f", lambda x: x["speedup"]),
             row("capture-to-label latency p50, sequential (ms)", "%.1f",
                 lambda x: x["sequential"]["latency_p50_ms"]),
             row("capture-to-label latency p50, pipelined (ms)", "%.1f", lambda x: x["pipelined"]["latency_p50_ms"]),
             "", "## Per piece of work: alone vs inside the stream (p50 ms)", "",
             "Alone: decode and preprocess (means) with OpenCV at one thread and at its default, each graph (p50) "
             "on plain ONNX Runtime (its defaults, spinning) at 1..cores intra-op threads; best: the fastest. In the "
             "stream: p50 of `stats.stages_ms` (coarse_cnn is the `coarse` stage, decode the `capture` stage; "
             "graph times include the session's feed checks; the runtime's `preprocess` stage makes the fine "
             "input only before: after, the chain makes it on fine steps).", "",
             "| piece | alone, 1 thread | alone, best | %s |" % " | ".join(
                 "%s %s" % (c, m) for c in codes for m in ("sequential", "pipelined")),
             "|---|---|---|%s" % ("---|" * 2 * len(codes))]
    last = s[codes[-1]]
    stage_of = {"decode": "capture", "coarse_cnn": "coarse", "coarse_step": "coarse_step", "fine_cnn": "fine_cnn",
                "fine_step": "fine_step"}
    for piece, stage in stage_of.items():
        if piece == "decode":
            alone1, best = last["decode_ms"], min(ms["decode_ms"] for ms in last["opencv_ms"].values())
        else:
            alone = last["alone_ms"][piece]
            alone1, best = alone["1"], min(v for v in alone.values() if v is not None)
        cells = []
        for c in codes:
            for mode in ("sequential", "pipelined"):
                v = s[c][mode]["stages_p50_ms"].get(stage)
                cells.append("–" if v is None else "%.2f" % v)
        lines.append("| %s | %.2f | %.2f | %s |" % (piece, alone1, best, " | ".join(cells)))
    best_pre = min(last["opencv_ms"].values(), key=lambda ms: ms["pre_coarse_ms"])
    lines.append("| preprocess: crop + coarse input (+ fine input on fine frames) | %.2f (+ %.2f) | %.2f (+ %.2f) | %s |" % (
        last["pre_coarse_ms"], last["pre_fine_ms"], best_pre["pre_coarse_ms"], best_pre["pre_fine_ms"], " | ".join(
            "%s" % ("–" if s[c][m]["stages_p50_ms"].get("preprocess") is None else
                    "%.2f" % s[c][m]["stages_p50_ms"]["preprocess"]) for c in codes for m in ("sequential", "pipelined"))))
    return "\n".join(lines) + "\n"


def parent(args) -> int:
    import cv2
    import onnxruntime

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    bundle = Path(args.bundle) if args.bundle else make_bundle(work)
    video = make_video(work / "stream-640x272.avi")
    codes = {}
    for spec in args.baseline:
        label, _, rev = spec.rpartition("=")
        codes[label or rev] = (baseline_code(work, rev), rev)
    codes["after"] = (ROOT, subprocess.run(["git", "describe", "--always", "--dirty"], cwd=str(ROOT),
                                           capture_output=True, text=True).stdout.strip())
    rounds = {c: [] for c in codes}
    for k in range(args.rounds):
        order = list(codes)[k % len(codes):] + list(codes)[:k % len(codes)]  # no code always runs first
        for c in order:
            rounds[c].append(run_child(codes[c][0], bundle, video, args.reps))
            print("round %d %s: sequential %.1f FPS (%.2f of limit), pipelined %.1f FPS (%.2f of limit)" % (
                k + 1, c, rounds[c][-1]["sequential"]["fps"], rounds[c][-1]["seq_ratio"],
                rounds[c][-1]["pipelined"]["fps"], rounds[c][-1]["pipe_ratio"]), file=sys.stderr, flush=True)
    result = {
        "command": "python " + " ".join(sys.argv), "date": time.strftime("%Y-%m-%d"), "rounds": args.rounds,
        "machine": {"description": "%d-core %s CPU" % (os.cpu_count(), platform.machine()),
                    "cpu": platform.processor(), "onnxruntime": onnxruntime.__version__, "opencv": cv2.__version__},
        "bundle": str(bundle), "video": {"path": str(video), "frames": SEGMENTS * SEGMENT_FRAMES, "size": SIZE,
                                         "codec": "MJPG"},
        "targets": TARGETS,
        "codes": {c: {"code": codes[c][1], "summary": summarise(rounds[c]), "rounds": rounds[c]} for c in codes},
    }
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from common import write_results

    write_results(Path(args.out), "cpu_runtime", result, markdown(result))
    return 0


# child: one round, with the edgevid of one code folder ------------------------------------------
def child(args) -> int:
    sys.path.insert(0, args.child)
    import edgevid

    if not Path(edgevid.__file__).resolve().is_relative_to(Path(args.child).resolve()):
        raise SystemExit("edgevid came from %s, not %s" % (edgevid.__file__, args.child))
    sys.path.insert(1, str(Path(__file__).resolve().parent))
    from common import time_calls

    out = {"code": args.child}
    out.update(work_alone(Path(args.bundle), Path(args.video), args.reps, time_calls))
    from edgevid.runtime.cli_run import run_stream

    for mode, pipelined in (("sequential", False), ("pipelined", True)):
        stats = run_stream(args.bundle, args.video, backend="ort", pipelined=pipelined)
        out[mode] = {"fps": stats["fps"], "frames": stats["frames"], "fine_rate": stats["fine_rate"],
                     "latency_ms": stats["latency_ms"], "stages_ms": stats["stages_ms"]}
    rate = out["fine_rate"] = out["pipelined"]["fine_rate"]
    best = {role: min(t.values()) for role, t in out["alone_ms"].items()}
    one = {role: t["1"] for role, t in out["alone_ms"].items()}

    def frame_work(ms):
        return ms["decode_ms"] + ms["pre_coarse_ms"] + rate * ms["pre_fine_ms"]

    pre = frame_work(out)  # one OpenCV thread
    pre_best = min(frame_work(ms) for ms in out["opencv_ms"].values())

    def graphs(ms):
        return ms["coarse_cnn"] + ms["coarse_step"] + rate * (ms["fine_cnn"] + ms["fine_step"])

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    out["cores"] = cores
    out["seq_limit_fps"] = 1000.0 / (pre_best + graphs(best))
    out["two_core_limit_fps"] = 1000.0 * cores / (pre + graphs(one))
    out["inference_two_core_limit_fps"] = 1000.0 * cores / graphs(one)
    out["seq_ratio"] = out["sequential"]["fps"] / out["seq_limit_fps"]
    out["pipe_ratio"] = out["pipelined"]["fps"] / out["two_core_limit_fps"]
    out["speedup"] = out["pipelined"]["fps"] / out["sequential"]["fps"]
    print(json.dumps(out))
    return 0


def work_alone(bundle: Path, video: Path, reps: int, time_calls) -> dict:
    """Each piece of the per-frame work on its own: decode, preprocess (one OpenCV thread), graphs."""
    import cv2
    import numpy as np
    import onnxruntime as ort

    from edgevid.bundle import load_bundle
    try:
        from edgevid.preprocess import Preprocessor
    except ImportError:  # where the redesigned core keeps it
        from edgevid.preprocess import Preprocessor
    from edgevid.runtime.source import open_source

    b = load_bundle(bundle)
    pre = Preprocessor(b.preprocess)
    coarse = min(b.preprocess.sizes)
    buf = np.empty((3, coarse, coarse), np.float32)
    default_threads = cv2.getNumThreads()
    cpu = {}
    for cv_threads in sorted({1, default_threads}):  # 1: the work of one core; the default: what a stream gets
        cv2.setNumThreads(cv_threads)
        frames, seconds = [], []
        with open_source(str(video)) as src:
            it = iter(src)
            while True:
                start = time.perf_counter()
                frame = next(it, None)
                if frame is None:
                    break
                seconds.append(time.perf_counter() - start)
                if len(frames) < 100:  # keeping every frame would time fresh memory (page faults) instead
                    frames.append(frame.image)
        decode_ms = 1000.0 * float(np.mean(seconds[5:]))  # after the decoder's first frames
        crops = itertools.cycle([pre.crop(f) for f in frames])
        images = itertools.cycle(frames)

        def pre_coarse(images=images):  # what every frame needs: crop, coarse input
            pre.normalize(cv2.resize(pre.crop(next(images)), (coarse, coarse), interpolation=cv2.INTER_AREA), out=buf)

        def pre_fine(crops=crops):  # what a fine frame needs on top: the fine input from the crop
            pre.normalize(next(crops))

        cpu[str(cv_threads)] = {"decode_ms": decode_ms, "pre_coarse_ms": time_calls(pre_coarse, 4 * reps)["mean"],
                                "pre_fine_ms": time_calls(pre_fine, 4 * reps)["mean"]}
    cv2.setNumThreads(default_threads)
    out = dict(cpu["1"])
    out["opencv_ms"] = cpu
    out["alone_ms"] = {}
    rng = np.random.default_rng(0)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    for role in ("coarse_cnn", "coarse_step", "fine_cnn", "fine_step"):
        out["alone_ms"][role] = {}
        for threads in range(1, cores + 1):
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.intra_op_num_threads = threads
            session = ort.InferenceSession(str(b.graph_path(role)), sess_options=options,
                                           providers=["CPUExecutionProvider"])
            feeds = {a.name: rng.standard_normal([int(d) for d in a.shape]).astype(np.float32)
                     for a in session.get_inputs()}
            out["alone_ms"][role][str(threads)] = time_calls(functools.partial(session.run, None, feeds), reps)["p50"]
            del session  # its threads end before the next one starts
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", help="a LiteEval bundle to reuse (default: make the demo's in --work)")
    parser.add_argument("--baseline", nargs="*", default=[],
                        help="[LABEL=]REV: git revisions whose code streams beside this checkout's")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--reps", type=int, default=60, help="calls per graph and thread count alone")
    parser.add_argument("--work", default="benchmarks/results/_scratch/cpu_runtime", help="video, demo, baseline code")
    parser.add_argument("--out", default="benchmarks/results/cpu-2core", help="where cpu_runtime.json/.md go")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--video", help=argparse.SUPPRESS)
    args = parser.parse_args()
    return child(args) if args.child else parent(args)


if __name__ == "__main__":
    sys.exit(main())
