"""The per-graph plot of a bench report (docs/bench.md §4): matplotlib's Agg backend, imported when a plot is
drawn (the device may have no matplotlib: edgevid.bench.run then writes no PNG and the report says so)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

from ..fsutil import atomic_path

GRAPHS_PNG = "graphs.png"


def write_graph_plots(report: Dict[str, Any], out_dir: Path) -> List[str]:
    """graphs.png: per role × backend × precision, latency (p50 and mean, a line from min to p99, log scale) and
    achieved GFLOP/s against the matmul peak. Returns the names written (none without results); needs matplotlib."""
    results = (report.get("graphs") or {}).get("results") or []
    if not results:
        return []
    import matplotlib

    matplotlib.use("Agg")  # no display on a device or in CI
    import matplotlib.pyplot as plt

    fig, (lat, rate) = plt.subplots(1, 2, figsize=(12, 0.45 * len(results) + 1.8), sharey=True)
    _latency_panel(lat, results)
    _rate_panel(rate, results, (report.get("context") or {}).get("matmul_peak") or {})
    fig.suptitle("edgevid bench: %s (%s), %d runs per graph" % (
        Path(report["bundle"]["root"]).name, report["bundle"]["family"], report["graphs"]["runs"]))
    fig.tight_layout()
    with atomic_path(Path(out_dir) / GRAPHS_PNG) as tmp:
        fig.savefig(str(tmp), dpi=110, format="png")
    plt.close(fig)
    return [GRAPHS_PNG]


def _labels(results: List[Dict[str, Any]]) -> List[str]:
    return ["%s · %s · %s" % (r["role"], r["backend"], r["precision"]) for r in results]


def _latency_panel(ax: Any, results: List[Dict[str, Any]]) -> None:
    # points and ranges, not bars: on a log axis a bar's length depends on where the axis starts
    y = list(range(len(results)))
    p50 = [r["latency_ms"]["p50"] for r in results]
    low = [m - r["latency_ms"]["min"] for m, r in zip(p50, results)]
    high = [r["latency_ms"]["p99"] - m for m, r in zip(p50, results)]
    ax.errorbar(p50, y, xerr=[low, high], fmt="o", color="#4c72b0", ecolor="#222222", capsize=3,
                label="p50, line min–p99")
    ax.plot([r["latency_ms"]["mean"] for r in results], y, "x", color="#dd8452", label="mean")
    ax.set_yticks(y)
    ax.set_yticklabels(_labels(results))
    ax.set_ylim(len(results) - 0.5, -0.5)
    ax.set_xscale("log")
    ax.set_xlabel("latency per call, ms")
    ax.legend(loc="best", fontsize=8)
    ax.grid(axis="x", which="both", alpha=0.3)


def _rate_panel(ax: Any, results: List[Dict[str, Any]], peak: Dict[str, Any]) -> None:
    y = [k for k, r in enumerate(results) if r["gflops"] is not None]
    # flagged where graphs.rates flagged it (above the peak its precision is measured against): one rule
    above = [results[k].get("why") is not None for k in y]
    for flag, colour, label in ((False, "#55a868", "achieved"), (True, "#c44e52", "above the peak: check gmacs")):
        picked = [k for k, a in zip(y, above) if a == flag]
        if picked:
            ax.plot([results[k]["gflops"] for k in picked], picked, "s", color=colour, label=label)
    for k, r in enumerate(results):
        if r["gflops"] is None:  # no GMACs declared: say so instead of drawing a zero
            ax.text(0.02, k, "no GMACs declared", va="center", fontsize=8, transform=ax.get_yaxis_transform())
    for key, style, name in (("peak_gflops", "--", "float32 matmul peak %.0f GFLOP/s"),
                             ("int8_peak_gops", ":", "int8 matmul peak %.0f GOP/s")):
        if isinstance(peak.get(key), (int, float)) and any(r.get("peak") == key for r in results):
            ax.axvline(peak[key], color="#8172b3", linestyle=style, label=name % peak[key])
    if y:
        ax.set_xscale("log")
    ax.set_xlabel("GFLOP/s (2 × GMACs / mean latency)")
    ax.legend(loc="best", fontsize=8)
    ax.grid(axis="x", which="both", alpha=0.3)
