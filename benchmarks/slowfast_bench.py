"""SlowFast on this CPU: per-clip latency ONNX Runtime vs PyTorch eager, GMACs, share of matmul peak, stream FPS.

    python benchmarks/slowfast_bench.py [--work DIR] [--out benchmarks/results/cpu-2core] [--reps N] [--quick]

1. Matmul peak of this machine: float32 ``torch.matmul`` and ``numpy.matmul`` of two N×N matrices on
   every core (best of a few runs), in GFLOP/s = 2·N³ / seconds.
2. Per clip, batch 1, random weights (timing only): R50 4×16 and R50 8×8 at 224² and 256², exported
   once into ``--work`` (git-ignored; export and onnxsim times recorded, reused on later runs), timed
   with ONNX Runtime and PyTorch eager. Achieved GFLOP/s = 2 × GMACs / seconds, and its share of peak.
3. End to end through StreamRuntime (decode → sample → preprocess → window → ONNX Runtime → predict) on
   a synthetic stream: the demo-size model (``edgevid demo --model slowfast``) and R50 8×8 @224 with
   the default clip policy (a clip every T/4 slots).

``--quick`` swaps the R50 configurations for the tiny/small presets at 64² (a smoke test of the script).
Writes ``slowfast.json`` and ``slowfast.md`` into ``--out``. Every number is measured in this run.
"""
from __future__ import annotations

import argparse
import functools
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgevid.backends import open_session  # noqa: E402
from edgevid.bundle import load_bundle  # noqa: E402
from edgevid.demo import slowfast as demo  # noqa: E402
from edgevid.export.slowfast import export_slowfast  # noqa: E402
from edgevid.models.slowfast import count_parameters, create_slowfast, create_slowfast_preset, slowfast_gmacs  # noqa: E402
from edgevid.runtime.cli_run import run_stream  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import time_calls, write_results  # noqa: E402


def matmul_peak(n: int, reps: int = 5) -> dict:
    """GFLOP/s of float32 N×N matmul with numpy and ONNX Runtime (edgevid.bench.context.matmul_peak, the package's
    one measurement) and torch (this script's eager reference); the peak is the best of the three, since each
    library ships its own GEMM kernels and the clips run on ONNX Runtime's."""
    from edgevid.bench.context import best_seconds, matmul_peak as package_peak

    out = package_peak(n, reps, threads=torch.get_num_threads())
    a, b = torch.randn(n, n), torch.randn(n, n)
    out["torch_gflops"] = 2.0 * n ** 3 / best_seconds(lambda: torch.matmul(a, b), reps) / 1e9
    rates = {k: out[k] for k in ("torch_gflops", "numpy_gflops", "onnxruntime_gflops") if isinstance(out[k], float)}
    out["peak_gflops"] = max(rates.values())
    out["peak_by"] = max(rates, key=rates.get)[:-len("_gflops")]
    return out


def export_once(model, path: Path, size: int, policy=None) -> dict:
    """Export into ``path`` unless a bundle is already there; returns the export time (None when reused)."""
    if (path / "bundle.json").is_file():
        return {"export_s": None, "reused": True}
    start = time.perf_counter()
    export_slowfast(model, path, size=size, resize_short=max(256, size) if size >= 224 else size + size // 8,
                    labels=["c%d" % i for i in range(model.config.num_classes)], policy=policy, overwrite=True)
    return {"export_s": round(time.perf_counter() - start, 1), "reused": False}


def clip_latency(preset: str, size: int, work: Path, reps: int, peak: float) -> dict:
    torch.manual_seed(0)
    model = create_slowfast_preset(preset, num_classes=400).eval()
    gmacs = slowfast_gmacs(model.config, size)
    bundle_dir = work / ("%s_%d" % (preset, size))
    exported = export_once(model, bundle_dir, size)
    clip = torch.randn(1, 3, model.config.fast_frames, size, size)
    with open_session(load_bundle(bundle_dir).graph_path("clip"), backend="ort") as session:
        ort_ms = time_calls(functools.partial(session.infer, {"clip": clip.numpy()}), reps)
    with torch.no_grad():
        torch_ms = time_calls(functools.partial(model, clip), reps)
    row = {"preset": preset, "size": size, "frames": model.config.fast_frames, "params": count_parameters(model),
           "gmacs": gmacs, "ort_ms": ort_ms, "torch_ms": torch_ms, "speedup": torch_ms["p50"] / ort_ms["p50"], **exported}
    for name in ("ort", "torch"):
        gflops = 2.0 * gmacs / (row[name + "_ms"]["p50"] / 1000.0)
        row[name + "_gflops"], row[name + "_peak_share"] = gflops, gflops / peak
    print("%s @%d: ORT %.0f ms, torch %.0f ms" % (preset, size, ort_ms["p50"], torch_ms["p50"]), file=sys.stderr)
    return row


def stream_fps(name: str, model, size: int, work: Path, policy: dict, source: str, max_frames: int) -> dict:
    bundle_dir = work / ("stream_%s" % name)
    exported = export_once(model.eval(), bundle_dir, size, policy)
    stats = run_stream(bundle_dir, source, backend="ort", max_frames=max_frames)
    bundle = load_bundle(bundle_dir)
    return {"model": name, "size": size, "frames_per_clip": model.config.fast_frames, "policy": dict(bundle.policy),
            "source": source, "frames": stats["frames"], "source_frames": stats["source_frames"],
            "clips": stats.get("clips", 0), "warmup_frames": stats.get("warmup_frames", 0), "fps": stats["fps"],
            "latency_ms": stats["latency_ms"], "clip_ms": (stats["stages_ms"].get("clip") or {}),
            "gmacs_per_clip": stats["gmacs_by_graph"].get("clip"), "gmacs_per_frame": stats["gmacs_per_frame"],
            **exported}


def markdown(r: dict) -> str:
    p = r["peak"]
    lines = [
        "# SlowFast on %s" % r["machine"]["description"], "",
        "Measured by `%s` on %s (torch %s, onnxruntime %s, %d torch threads). Random weights (timing only)." % (
            r["command"], r["date"], r["machine"]["torch"], r["machine"]["onnxruntime"], p["threads"]), "",
        "## Matmul peak (float32, %d×%d)" % (p["n"], p["n"]), "",
        "torch.matmul %.1f GFLOP/s, numpy.matmul %.1f GFLOP/s, ONNX Runtime MatMul %.1f GFLOP/s (best of %d runs "
        "each); peak used below: the best, %.1f GFLOP/s." % (
            p["torch_gflops"], p["numpy_gflops"], p["onnxruntime_gflops"], 5, p["peak_gflops"]), "",
        "## Per clip, batch 1 (p50 over %d runs)" % r["reps"], "",
        "GFLOP/s = 2 × GMACs / seconds (conv and linear MACs only, docs/models.md §1.1).", "",
        "| config | crop | frames | GMACs / clip | ONNX Runtime ms | PyTorch eager ms | ORT speed-up | "
        "ORT GFLOP/s (share of peak) | eager GFLOP/s (share) | export s |",
        "|---|---|---|---|---|---|---|---|---|---|"]
    for c in r["clips"]:
        lines.append("| %s | %d² | %d | %.2f | %.0f | %.0f | %.2f× | %.1f (%.0f%%) | %.1f (%.0f%%) | %s |" % (
            c["preset"], c["size"], c["frames"], c["gmacs"], c["ort_ms"]["p50"], c["torch_ms"]["p50"], c["speedup"],
            c["ort_gflops"], 100 * c["ort_peak_share"], c["torch_gflops"], 100 * c["torch_peak_share"],
            "reused" if c["reused"] else "%.0f" % c["export_s"]))
    lines += ["", "## End to end through StreamRuntime (ONNX Runtime, pipelined stages)", "",
              "| model | crop | T | every | frames | clips | FPS | clip ms p50 | latency p50 / p90 ms | "
              "GMACs / clip | GMACs / frame |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in r["streams"]:
        lat = s["latency_ms"]
        lines.append("| %s | %d² | %d | %s | %d | %d | %.1f | %.0f | %.0f / %.0f | %.3f | %.3f |" % (
            s["model"], s["size"], s["frames_per_clip"], s["policy"].get("every", "T/4"), s["frames"], s["clips"],
            s["fps"] or 0.0, s["clip_ms"].get("p50") or 0.0, lat["p50"] or 0.0, lat["p90"] or 0.0,
            s["gmacs_per_clip"] or 0.0, s["gmacs_per_frame"] or 0.0))
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="benchmarks/results/_scratch/slowfast", help="exported graphs (reused)")
    parser.add_argument("--out", default="benchmarks/results/cpu-2core", help="where slowfast.json/.md go")
    parser.add_argument("--reps", type=int, default=3, help="timed runs per clip configuration")
    parser.add_argument("--matmul", type=int, default=4096, help="matrix side for the peak")
    parser.add_argument("--quick", action="store_true", help="tiny/small presets at 64² (smoke test of the script)")
    args = parser.parse_args()
    work = Path(args.work) / ("quick" if args.quick else "full")
    work.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(os.cpu_count() or 1)
    if args.quick:
        configs, args.reps, args.matmul = [("tiny", 64), ("small", 64)], 1, 512
    else:
        configs = [("r50_4x16", 224), ("r50_4x16", 256), ("r50_8x8", 224), ("r50_8x8", 256)]

    peak = matmul_peak(args.matmul)
    clips = [clip_latency(preset, size, work, args.reps, peak["peak_gflops"]) for preset, size in configs]

    s = demo.QUICK if args.quick else demo.FULL
    labels = ["c%d" % i for i in range(10)]
    torch.manual_seed(0)
    demo_model = create_slowfast(config=demo.config(s, labels))
    demo_policy = {"train_fps": s.fps, "step_fps": s.fps, "every": s.frames, "pad": "none"}
    segments = 4 if args.quick else 30
    streams = [stream_fps("demo", demo_model, s.size, work, demo_policy,
                          "synthetic:seed=1,segments=%d,frames=%d,fps=%g" % (segments, s.frames, s.fps),
                          segments * s.frames)]
    big = ("tiny", 64) if args.quick else ("r50_8x8", 224)
    big_model = create_slowfast_preset(big[0], num_classes=400)
    t = big_model.config.fast_frames
    step = 30.0 / big_model.config.frame_stride
    n = t + 3 * max(1, t // 4)  # warm-up plus a few clips at the default every = T/4
    streams.append(stream_fps(big[0], big_model, big[1], work, {}, "synthetic:seed=1,segments=1,frames=%d,fps=%g" % (
        n, step), n))
    import onnxruntime

    result = {
        "command": "python " + " ".join(sys.argv), "date": time.strftime("%Y-%m-%d"),
        "machine": {"description": "%d-core %s CPU" % (os.cpu_count(), platform.machine()), "cpu": platform.processor(),
                    "torch": torch.__version__, "onnxruntime": onnxruntime.__version__},
        "reps": args.reps, "peak": peak, "clips": clips, "streams": streams,
    }
    write_results(Path(args.out), "slowfast-quick" if args.quick else "slowfast", result, markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
