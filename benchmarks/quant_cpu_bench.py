"""ONNX Runtime CPU latency and agreement of LiteEval's CNNs: FP32 vs CPU-form INT8 variants vs TensorRT-form s8 Q/DQ.

    python benchmarks/quant_cpu_bench.py [--bundle DIR] [--work DIR] [--rounds 5] [--reps 20] [--out DIR]

A copy of the LiteEval demo bundle (``--bundle``, default /tmp/d-liteeval/bundle; the original is never
changed) is calibrated with calibration/liteeval.json, then coarse_cnn and fine_cnn are quantized from
those feeds (edgevid.quant.cpu_int8.quantize_file) in each variant:

- cpu-qdq-pc      u8 activations, s8 weights, QDQ, per-channel (quantize_cpu's default)
- cpu-qdq-pt      the same, per-tensor weights
- cpu-qdq-pc-rr   the same with reduce_range (7-bit weights; for x86 without VNNI)
- cpu-qop-pc      operator form (QLinearConv …), per-channel
- cpu-qop-pt      operator form, per-tensor
- cpu-qdq-pc-ent / -pct   the default form with entropy / percentile calibration (accuracy mostly)
- trt-s8          TensorRT's form: symmetric s8 activations and weights, QDQ, per-channel (comparison only)

Latency: plain ONNX Runtime sessions (ORT_ENABLE_ALL) at 1 and 2 intra-op threads, every variant timed
once per round in turn (alternating, so all see the same machine load), ``--reps`` calls each over
the recorded feeds; figures are medians over rounds, speedups medians of per-round ratios to FP32.
Agreement: each variant's output on every calibration feed vs FP32 (cosine, max abs error), and end to
end: a held-out synthetic stream through StreamRuntime with both CNNs of a variant vs all-FP32 (top-1
label and gate-decision agreement). Profile: ORT's per-op-type time for FP32 and the fastest INT8
variant of fine_cnn (which ops stayed float). Writes quant_cpu.json and quant_cpu.md into ``--out``.
"""
from __future__ import annotations

import argparse
import functools
import itertools
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import write_results  # noqa: E402
from edgevid.bench import timing  # noqa: E402

ROLES = ("coarse_cnn", "fine_cnn")
CPU = {"method": "minmax", "activation": "uint8", "weight": "int8", "symmetric": False}
VARIANTS = {
    "cpu-qdq-pc": dict(CPU, fmt="qdq", per_channel=True),
    "cpu-qdq-pt": dict(CPU, fmt="qdq", per_channel=False),
    "cpu-qdq-pc-rr": dict(CPU, fmt="qdq", per_channel=True, reduce_range=True),
    "cpu-qop-pc": dict(CPU, fmt="qoperator", per_channel=True),
    "cpu-qop-pt": dict(CPU, fmt="qoperator", per_channel=False),
    "cpu-qdq-pc-ent": dict(CPU, fmt="qdq", per_channel=True, method="entropy"),
    "cpu-qdq-pc-pct": dict(CPU, fmt="qdq", per_channel=True, method="percentile"),
    "trt-s8": dict(method="minmax", fmt="qdq", per_channel=True, activation="int8", weight="int8", symmetric=True),
}
TIMED = ("fp32", "cpu-qdq-pc", "cpu-qdq-pt", "cpu-qdq-pc-rr", "cpu-qop-pc", "cpu-qop-pt", "trt-s8")
STREAM = "synthetic:seed=2000,segments=20,frames=8,fps=10"  # the demo's held-out seed, not the recipe's
THREADS = (1, 2)


def prepare(bundle_src: Path, work: Path):
    from edgevid.bundle import load_bundle
    from edgevid.quant.feeds import calibrate, load_feeds
    from edgevid.quant.cpu_int8 import quantize_file

    root = work / "bundle"
    if not (root / "bundle.json").is_file():
        shutil.copytree(str(bundle_src), str(root))
    bundle = load_bundle(root)
    if not bundle.graph("fine_cnn").find("calibration"):
        start = time.perf_counter()
        calibrate(bundle, ROOT / "calibration" / "liteeval.json")
        print("calibrated in %.0f s" % (time.perf_counter() - start), file=sys.stderr)
    files, feeds, settings = {}, {}, {}
    for role in ROLES:
        feeds[role] = load_feeds(bundle, role)
        files[(role, "fp32")] = bundle.path(bundle.graph(role))
        for name, opts in VARIANTS.items():
            path = work / ("%s.%s.onnx" % (role, name))
            if not path.is_file():
                start = time.perf_counter()
                settings[(role, name)] = quantize_file(files[(role, "fp32")], path, feeds[role], **opts)
                settings[(role, name)]["seconds"] = round(time.perf_counter() - start, 1)
                print("%s %s quantized in %.1f s" % (role, name, settings[(role, name)]["seconds"]), file=sys.stderr)
            files[(role, name)] = path
    return bundle, files, feeds, settings


def session(path: Path, threads: int, profile: str = None):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    if profile:
        opts.enable_profiling = True
        opts.profile_file_prefix = profile
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def calls(feeds):
    names = [k for k in feeds if not k.startswith("_")]
    n = len(feeds[names[0]])
    return [{k: np.ascontiguousarray(feeds[k][i:i + 1]) for k in names} for i in range(n)]


def _run_next(session, feeds) -> None:
    session.run(None, next(feeds))


def latency(files, feeds, rounds: int, reps: int):
    sessions = {(r, v, t): session(files[(r, v)], t) for r in ROLES for v in TIMED for t in THREADS}
    inputs = {r: calls(feeds[r]) for r in ROLES}
    per_round = {key: [] for key in sessions}
    for _ in range(rounds):
        for role in ROLES:
            for t in THREADS:
                for v in TIMED:
                    s, data = sessions[(role, v, t)], inputs[role]
                    feeds = itertools.cycle(data)
                    seconds = timing.time_calls(functools.partial(_run_next, s, feeds), reps, warmup=3)
                    per_round[(role, v, t)].append(1000.0 * statistics.median(seconds))
    out = {}
    for (role, v, t), ms in per_round.items():
        base = per_round[(role, "fp32", t)]
        out.setdefault(role, {}).setdefault(v, {})["%dt" % t] = {
            "ms_p50": round(statistics.median(ms), 2),
            "speedup": round(statistics.median(b / m for b, m in zip(base, ms)), 2)}
    return out


def agreement(files, feeds):
    out = {}
    for role in ROLES:
        data = calls(feeds[role])
        ref = session(files[(role, "fp32")], 2)
        want = np.concatenate([ref.run(None, d)[0] for d in data]).reshape(len(data), -1)
        for v in VARIANTS:
            s = session(files[(role, v)], 2)
            got = np.concatenate([s.run(None, d)[0] for d in data]).reshape(len(data), -1)
            # float64 and no epsilon: the demo's coarse features have norms near 1e-8
            w, g = want.astype(np.float64), got.astype(np.float64)
            cos = (w * g).sum(1) / (np.linalg.norm(w, axis=1) * np.linalg.norm(g, axis=1))
            out.setdefault(role, {})[v] = {"cosine_mean": round(float(cos.mean()), 5),
                                           "cosine_min": round(float(cos.min()), 5),
                                           "max_rel_err": round(float(np.abs(w - g).max() / np.abs(w).max()), 4),
                                           "samples": len(data)}
    return out


def end_to_end(bundle, files):
    """Top-1 label and gate-decision agreement of a held-out stream, both CNNs INT8 (variant) vs FP32."""
    from edgevid.backends.ort import OrtSession
    from edgevid.runtime.stream import StreamRuntime

    def run(variant, only=ROLES):
        sessions = {}
        for role in bundle.rules.roles:
            graph = bundle.graph(role)
            int8 = role in only and variant != "fp32"
            sessions[role] = OrtSession(files[(role, variant)] if int8 else bundle.path(graph), name=role,
                                        precision="int8" if int8 else "fp32",
                                        expected=(graph.inputs, graph.outputs), threads=2)
        runtime = StreamRuntime(bundle, sessions=sessions, pipelined=False)
        return [(p.class_index, p.path) for p in runtime.run(STREAM)]

    ref = run("fp32")
    out = {}
    runs = [(v, ROLES) for v in VARIANTS] + [("cpu-qdq-pc", (role,)) for role in ROLES]
    for v, only in runs:
        got = run(v, only)
        out[v if only == ROLES else "%s (%s only)" % (v, only[0])] = {"frames": len(ref),
                  "top1_agreement": round(float(np.mean([a[0] == b[0] for a, b in zip(ref, got)])), 4),
                  "gate_agreement": round(float(np.mean([a[1] == b[1] for a, b in zip(ref, got)])), 4),
                  "fine_rate_fp32": round(float(np.mean([a[1] == "fine" for a in ref])), 4),
                  "fine_rate": round(float(np.mean([b[1] == "fine" for b in got])), 4)}
    return out


def profile(files, feeds, variant: str, work: Path):
    """Per op type, the share of fine_cnn's kernel time (ORT profiling at 2 threads) for FP32 and ``variant``."""
    out = {}
    data = calls(feeds["fine_cnn"])
    for v in ("fp32", variant):
        s = session(files[("fine_cnn", v)], 2, profile=str(work / ("prof-" + v)))
        for i in range(20):
            s.run(None, data[i % len(data)])
        path = s.end_profiling()
        events = json.load(open(path))
        by_op = {}
        for e in events:
            if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
                op = e.get("args", {}).get("op_name", "?")
                by_op[op] = by_op.get(op, 0) + e.get("dur", 0)
        total = sum(by_op.values()) or 1
        out[v] = {op: round(100.0 * us / total, 1) for op, us in sorted(by_op.items(), key=lambda kv: -kv[1])}
        os.unlink(path)
    return out


def cpu_flags():
    try:
        flags = [line for line in open("/proc/cpuinfo") if line.startswith("flags")][0].split()
    except (OSError, IndexError):
        return []
    return sorted(f for f in flags if f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8"))


def markdown(result) -> str:
    lines = ["# ONNX Runtime CPU INT8: LiteEval CNNs", "",
             "%s, %d cores, onnxruntime %s, CPU flags %s; %d rounds × %d calls, medians; speedup vs FP32 at the "
             "same threads (median of per-round ratios)." % (result["machine"], result["cores"],
                                                             result["onnxruntime"], ", ".join(result["cpu_flags"]),
                                                             result["rounds"], result["reps"]), ""]
    lines += ["| role | variant | 1 thread ms | speedup | 2 threads ms | speedup | cosine mean / min |",
              "|---|---|---:|---:|---:|---:|---|"]
    for role, variants in result["latency"].items():
        for v, d in variants.items():
            agree = result["agreement"][role].get(v)
            cos = "%.4f / %.4f" % (agree["cosine_mean"], agree["cosine_min"]) if agree else "1 (reference)"
            lines.append("| %s | %s | %.2f | %.2fx | %.2f | %.2fx | %s |" % (
                role, v, d["1t"]["ms_p50"], d["1t"]["speedup"], d["2t"]["ms_p50"], d["2t"]["speedup"], cos))
    lines += ["", "End to end (held-out stream %s, both CNNs INT8 vs FP32, sequential):" % STREAM, "",
              "| variant | top-1 agreement | gate agreement | fine rate (FP32 → INT8) |", "|---|---:|---:|---|"]
    for v, d in result["end_to_end"].items():
        lines.append("| %s | %.1f%% | %.1f%% | %.1f%% → %.1f%% |" % (v, 100 * d["top1_agreement"],
                                                                  100 * d["gate_agreement"],
                                                                  100 * d["fine_rate_fp32"], 100 * d["fine_rate"]))
    lines += ["", "fine_cnn kernel time by op type at 2 threads (ORT profiling, %):", ""]
    for v, ops in result["profile"].items():
        lines.append("- %s: %s" % (v, ", ".join("%s %.1f" % kv for kv in list(ops.items())[:8])))
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bundle", default="/tmp/d-liteeval/bundle")
    p.add_argument("--work", default=None, help="work folder (default: a new temporary one)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--reps", type=int, default=20)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "cpu-2core"))
    args = p.parse_args(argv)
    import onnxruntime

    work = Path(args.work or tempfile.mkdtemp(prefix="quant-cpu-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    bundle, files, feeds, settings = prepare(Path(args.bundle), work)
    lat = latency(files, feeds, args.rounds, args.reps)
    fastest = min((v for v in TIMED if v.startswith("cpu")), key=lambda v: lat["fine_cnn"][v]["2t"]["ms_p50"])
    result = {"machine": platform.processor() or platform.machine(), "cores": os.cpu_count(),
              "cpu_flags": cpu_flags(), "onnxruntime": onnxruntime.__version__, "rounds": args.rounds,
              "reps": args.reps, "bundle": args.bundle, "variants": VARIANTS, "latency": lat,
              "agreement": agreement(files, feeds), "end_to_end": end_to_end(bundle, files),
              "profile": profile(files, feeds, fastest, work), "fastest_fine_int8": fastest,
              "quantize_seconds": {"%s/%s" % k: s["seconds"] for k, s in settings.items()}}
    write_results(Path(args.out), "quant_cpu", result, markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
