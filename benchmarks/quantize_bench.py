"""Precision across the three demo families: calibration time, and what INT8 (both forms) and FP16 cost.

    python benchmarks/quantize_bench.py --bundle liteeval=DIR --bundle slowfast=DIR --bundle prernn=DIR
        [--out benchmarks/results/cpu-2core]

Each bundle (an ``edgevid demo`` bundle; a copy is used, the original is never changed) is calibrated with
calibration/<family>.json, then ``edgevid.quant.apply`` makes INT8 (TensorRT and CPU forms) and FP16 for
every role the family's rules allow, keeps higher what its measurement says breaks (roles, and layers of the
TensorRT form), and reports on the family's held-out synthetic streams (quantize.HELD_OUT) against FP32 and
the ground truth. SlowFast's clip, INT8 only on request, is also quantized with ``--role clip``.

Then ONNX Runtime CPU latency of every CNN role with INT8 graphs, FP32 vs TensorRT-form Q/DQ vs CPU-form
INT8, at 1 and 2 threads, the forms timed in turn each round (side by side, same machine load), over the
role's recorded calibration feeds; with the machine's FP32 and INT8 matmul peak measured by ONNX Runtime's
own MatMul / MatMulInteger kernels, so each role's GMAC/s reads as a fraction of what the cores can do.
Every figure is measured in this run; writes quantize.json and quantize.md into ``--out``.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import write_results  # noqa: E402
from edgevid.bench.graphs import time_session  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
THREADS = (1, 2)


def run_family(family: str, source: Path, work: Path) -> dict:
    from edgevid.bundle import load_bundle
    from edgevid.quant import calibrate, quantize

    root = work / family
    shutil.copytree(str(source), str(root))
    start = time.perf_counter()
    cal = calibrate(root, ROOT / "calibration" / ("%s.json" % family))
    out = {"calibration_s": time.perf_counter() - start, "calibration": cal.to_dict()}
    runs = [("int8", None), ("fp16", None)] + ([("int8", ["clip"])] if family == "slowfast" else [])
    for precision, roles in runs:
        start = time.perf_counter()
        report = quantize(load_bundle(root), precision, roles=roles)
        key = precision if roles is None else "%s --role %s" % (precision, " ".join(roles))
        out[key] = {"float_layers": report.get("float_layers"),"seconds": time.perf_counter() - start, "kept": report["kept"], "fp32": report["fp32"],
                          "plans": {n: {"stream": {k: v for k, v in e["stream"].items() if k != "sessions"},
                                        "targets": e["targets"], "roles": e["roles"]}
                                    for n, e in report["plans"].items()}}
    out["latency"] = latency(load_bundle(root))
    return out


def latency(bundle, rounds: int = 5, reps: int = 20) -> dict:
    """ms per call (median over rounds) of each CNN role's FP32, TensorRT-form and CPU-form INT8 graphs."""
    import numpy as np

    from edgevid.backends.ort import OrtSession
    from edgevid.quant.activations import feed_list
    from edgevid.quant.feeds import load_feeds

    out = {}
    for role in bundle.rules.roles:
        forms = {"fp32": bundle.graph_path(role)}
        for a in bundle.graph(role).find("onnx", "int8"):
            forms["int8-%s" % a.info["target"]] = bundle.path(a)
        if len(forms) == 1:
            continue
        feeds = feed_list(load_feeds(bundle, role), reps)
        sessions = {(f, t): OrtSession(path, role, threads=t).activate() for f, path in forms.items() for t in THREADS}
        times = {key: [] for key in sessions}
        for _ in range(rounds):
            for key, s in sessions.items():
                times[key].append(1e3 * float(np.mean(time_session(s, feeds, runs=len(feeds), warmup=1))))
        for s in sessions.values():
            s.deactivate()
        gmacs = bundle.graph(role).gmacs
        out[role] = {"gmacs": gmacs, "forms": {f: {"%dt" % t: {"ms": float(np.median(times[(f, t)])),
                                                               "speedup": float(np.median(np.array(times[("fp32", t)])
                                                                                          / np.array(times[(f, t)])))}
                                                   for t in THREADS} for f in forms}}
    return out


def matmul_peak(n: int = 2048, reps: int = 5) -> dict:
    """GMAC/s of ONNX Runtime's FP32 MatMul and u8×s8 MatMulInteger on n×n matrices, at 1 and 2 threads (the
    package's one measurement, edgevid.bench.context.ort_matmul_rate)."""
    from edgevid.bench.context import ort_matmul_rate

    return {name: {"%dt" % t: ort_matmul_rate(n, op, threads=t, reps=reps) for t in THREADS}
            for name, op in (("fp32", "MatMul"), ("int8", "MatMulInteger"))}


def markdown(results: dict) -> str:
    lines = ["# Precision per family on this CPU", "", "Measured by `python benchmarks/quantize_bench.py` on %s "
             "(%s). Held-out synthetic streams; INT8 forms and FP16 against FP32." % (results["date"], results["machine"]),
             "", "| family | calibration | precision | plan | roles reduced | kept FP32 | segment accuracy (FP32) | "
             "top-1 agreement | where FP32 is confident | largest FP32 margin where they differ | gate agreement | "
             "fine rate (FP32) | targets missed |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for family, r in results["families"].items():
        for precision in _runs(r):
            q = r[precision]
            for name, e in q["plans"].items():
                s = e["stream"]
                missed = ["%s %.4g" % (k, v["measured"]) for k, v in e["targets"].items() if not v["ok"]]
                margin = s.get("max_fp32_margin_where_they_differ")
                lines.append("| %s | %.0f s | %s | %s | %s | %s | %s (%s) | %s | %s | %s | %s | %s (%s) | %s |" % (
                    family, r["calibration_s"], precision, name, ", ".join(e["roles"]) or "none",
                    ", ".join(q["kept"]) or "none", _pct(s.get("segment_accuracy")),
                    _pct(q["fp32"].get("segment_accuracy")), _pct(s["top1_agreement"]),
                    _pct(s.get("top1_agreement_where_fp32_is_confident")),
                    "–" if margin is None else "%.3f" % margin, _pct(s.get("gate_agreement")),
                    _pct(s.get("fine_rate")), _pct(q["fp32"].get("fine_rate")), "; ".join(missed) or "none"))
    lines += ["", "Why roles were kept FP32:", ""]
    for family, r in results["families"].items():
        for precision in _runs(r):
            for role, why in r[precision]["kept"].items():
                lines.append("- %s %s %s: %s" % (family, precision, role, why))
    lines += ["", "Layers kept float in the TensorRT-form INT8 graphs (chosen on the calibration streams; float "
              "layers → top-1 agreement there):", ""]
    for family, r in results["families"].items():
        for precision in _runs(r):
            chosen = r[precision].get("float_layers")
            if chosen:
                lines.append("- %s %s: %s float layers, %s (target %s, %s); candidates %s" % (
                    family, precision, sum(len(v) for v in chosen["float_layers"].values()),
                    _pct(chosen["top1_agreement"]), _pct(chosen["target"]), "met" if chosen["met"] else "not met",
                    ", ".join("%d → %s" % (c["float_layers"], _pct(c["top1_agreement"])) for c in chosen["candidates"])))
    peak = results["matmul_peak"]
    lines += ["", "ONNX Runtime CPU latency per CNN role (ms per call over recorded feeds, median of rounds; speedup "
              "vs FP32 at the same threads). Matmul peak of this machine by ONNX Runtime: FP32 %.0f / %.0f GMAC/s, "
              "INT8 (MatMulInteger) %.0f / %.0f GMAC/s at 1 / 2 threads; 'of peak' compares the CPU form with the INT8 peak, FP32 and the TensorRT form (which ONNX Runtime computes in float around its Q/DQ pairs) with FP32's." % (
                  peak["fp32"]["1t"], peak["fp32"]["2t"], peak["int8"]["1t"], peak["int8"]["2t"]), "",
              "| family | role | GMACs | form | 1 thread ms | speedup | of peak | 2 threads ms | speedup | of peak |",
              "|---|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for family, r in results["families"].items():
        for role, e in r["latency"].items():
            for form, f in e["forms"].items():
                # ONNX Runtime computes the TensorRT form in float around its Q/DQ pairs: FP32's peak applies
                kind = "int8" if form == "int8-cpu" else "fp32"
                cells = []
                for t in ("1t", "2t"):
                    rate = e["gmacs"] / (f[t]["ms"] / 1e3) if e["gmacs"] else None
                    cells += ["%.2f" % f[t]["ms"], "%.2fx" % f[t]["speedup"],
                              "–" if rate is None else "%.0f%%" % (100 * rate / peak[kind][t])]
                lines.append("| %s | %s | %s | %s | %s |" % (family, role, "%.3f" % e["gmacs"] if e["gmacs"] else "–",
                                                             form, " | ".join(cells)))
    return "\n".join(lines) + "\n"


def _runs(r: dict):
    return [k for k in r if k.startswith(("int8", "fp16"))]


def _pct(x):
    return "–" if x is None else "%.1f%%" % (100.0 * x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", action="append", required=True, metavar="FAMILY=DIR")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "cpu-2core"))
    args = parser.parse_args()
    bundles = dict(b.split("=", 1) for b in args.bundle)
    results = {"date": time.strftime("%Y-%m-%d"), "machine": "%s, %d cores" % (platform.machine(), os.cpu_count() or 0),
               "families": {}, "matmul_peak": matmul_peak()}
    with tempfile.TemporaryDirectory() as tmp:
        for family, path in bundles.items():
            results["families"][family] = run_family(family, Path(path), Path(tmp))
    write_results(Path(args.out), "quantize", results, markdown(results))


if __name__ == "__main__":
    main()
