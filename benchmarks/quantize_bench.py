"""Precision across the three demo families: calibration time, and what INT8 (both forms) and FP16 cost.

    python benchmarks/quantize_bench.py --bundle liteeval=DIR --bundle slowfast=DIR --bundle prernn=DIR
        [--out benchmarks/results/cpu-2core]

Each bundle (an ``edgevid demo`` bundle; a copy is used, the original is never changed) is calibrated with
calibration/<family>.json, then ``edgevid.quant.apply`` makes INT8 (TensorRT and CPU forms) and FP16 for
every role the family's rules allow, keeps higher what its measurement says breaks, and reports on the
family's held-out synthetic streams (quantize.HELD_OUT) against FP32 and the ground truth. Every figure is
measured in this run; writes quantize.json and quantize.md into ``--out``.
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

ROOT = Path(__file__).resolve().parents[1]


def run_family(family: str, source: Path, work: Path) -> dict:
    from edgevid.bundle import load_bundle
    from edgevid.quant import calibrate, quantize

    root = work / family
    shutil.copytree(str(source), str(root))
    start = time.perf_counter()
    cal = calibrate(root, ROOT / "calibration" / ("%s.json" % family))
    out = {"calibration_s": time.perf_counter() - start, "calibration": cal.to_dict()}
    for precision in ("int8", "fp16"):
        start = time.perf_counter()
        report = quantize(load_bundle(root), precision)
        out[precision] = {"seconds": time.perf_counter() - start, "kept": report["kept"], "fp32": report["fp32"],
                          "plans": {n: {"stream": {k: v for k, v in e["stream"].items() if k != "sessions"},
                                        "targets": e["targets"], "roles": e["roles"]}
                                    for n, e in report["plans"].items()}}
    return out


def markdown(results: dict) -> str:
    lines = ["# Precision per family on this CPU", "", "Measured by `python benchmarks/quantize_bench.py` on %s "
             "(%s). Held-out synthetic streams; INT8 forms and FP16 against FP32." % (results["date"], results["machine"]),
             "", "| family | calibration | precision | plan | roles reduced | kept FP32 | segment accuracy (FP32) | "
             "top-1 agreement | where FP32 is confident | largest FP32 margin where they differ | gate agreement | "
             "fine rate (FP32) | targets missed |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for family, r in results["families"].items():
        for precision in ("int8", "fp16"):
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
        for precision in ("int8", "fp16"):
            for role, why in r[precision]["kept"].items():
                lines.append("- %s %s %s: %s" % (family, precision, role, why))
    return "\n".join(lines) + "\n"


def _pct(x):
    return "–" if x is None else "%.1f%%" % (100.0 * x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", action="append", required=True, metavar="FAMILY=DIR")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "cpu-2core"))
    args = parser.parse_args()
    bundles = dict(b.split("=", 1) for b in args.bundle)
    results = {"date": time.strftime("%Y-%m-%d"), "machine": "%s, %d cores" % (platform.machine(), os.cpu_count() or 0),
               "families": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for family, path in bundles.items():
            results["families"][family] = run_family(family, Path(path), Path(tmp))
    write_results(Path(args.out), "quantize", results, markdown(results))


if __name__ == "__main__":
    main()
