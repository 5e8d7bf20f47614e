"""The plots of the ``streams`` section (``edgevid.bench.stream.measure_streams``) as PNG files: latency per
stage, fine-model rate over the stream against its ground-truth segments, time per frame by stage, gated vs
always-fine. matplotlib (Agg) is imported inside the functions; a figure whose data was not measured is skipped."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

PIPELINE_STAGES = ("capture", "preprocess", "coarse", "chain", "window", "infer", "cnn", "rnn")


def write_stream_plots(report: Dict[str, Any], out_dir: Path) -> List[str]:
    """Write the plots of ``report["streams"]`` (or of a streams section itself) into ``out_dir``; returns the
    file names written."""
    streams = report.get("streams", report)
    if not _measured(streams):
        return []  # the report says why the streams were not measured
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, draw in (("stream_latency.png", _latency), ("stream_fine_rate.png", _fine_rate),
                       ("stream_stages.png", _breakdown), ("stream_gated_vs_fine.png", _gated_vs_fine)):
        if _plot(draw, streams, out_dir / name):
            written.append(name)
    return written


def _plot(draw, streams: Dict[str, Any], path: Path) -> bool:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.8))
    try:
        if not draw(ax, streams):
            return False
        fig.tight_layout()
        fig.savefig(str(path), dpi=110)
        return True
    finally:
        plt.close(fig)


def _measured(value: Any) -> bool:
    return isinstance(value, dict) and "not_measured" not in value


def _latency(ax, streams: Dict[str, Any]) -> bool:
    """Distributions of every stage and graph (pipelined, read as fast as possible) and of the paced
    capture-to-label latency."""
    stages = streams.get("stages", {}).get("pipelined", {})
    stages = stages if _measured(stages) else {}
    names = [n for n in stages if stages[n].get("samples_ms")]
    data = [stages[n]["samples_ms"] for n in names]
    paced = streams["paced"].get("latency_samples_ms") or [] if _measured(streams.get("paced")) else []
    if paced:
        names.append("capture→label\n(paced %s fps)" % _fmt(streams["paced"].get("source_fps")))
        data.append(paced)
    if not data:
        return False
    ax.boxplot(data, showfliers=True, whis=(1, 99), **_horizontal())
    ax.set_yticks(range(1, len(names) + 1))  # not boxplot's labels=: renamed in matplotlib 3.9
    ax.set_yticklabels(names)
    ax.set_xscale("log")
    ax.set_xlabel("ms (log; whiskers p1–p99)")
    ax.set_title("Latency per stage and graph (pipelined), and paced capture-to-label")
    ax.grid(True, axis="x", alpha=0.3)
    return True


def _fine_rate(ax, streams: Dict[str, Any]) -> bool:
    fine = streams.get("fine_rate")
    if not _measured(fine):
        return False
    segments = streams.get("segments") if isinstance(streams.get("segments"), list) else []
    if fine["start_frame"]:  # a run capped by --frames covers the start of the source: draw that part only
        last = fine["start_frame"][-1] + fine["window_predictions"]
        segments = [dict(seg, end=min(seg["end"], last)) for seg in segments if seg["start"] < last]
    classes = sorted({s["class"] for s in segments})
    colours = {c: "C%d" % (i % 10) for i, c in enumerate(classes)}
    for seg in segments:
        ax.axvspan(seg["start"], seg["end"], color=colours[seg["class"]], alpha=0.18, lw=0)
        ax.axvline(seg["start"], color="grey", lw=0.6)  # a boundary also between two segments of one class
    ax.step(fine["start_frame"], fine["rate"], where="post", color="k",
            label="fine rate per %d predictions" % fine["window_predictions"])
    ax.axhline(fine["overall"], color="k", ls=":", label="overall %.2f" % fine["overall"])
    for c in classes:
        ax.plot([], [], color=colours[c], alpha=0.4, lw=8, label=c)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("frame index")
    ax.set_ylabel("share of steps on the fine model")
    ax.set_title("Fine-model rate over the stream" + (" against ground-truth segments" if segments else ""))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    return True


def _breakdown(ax, streams: Dict[str, Any]) -> bool:
    """Mean time per source frame of each stage and graph (mean × runs per frame), sequential and pipelined."""
    if not _measured(streams.get("stages")):
        return False
    modes = [m for m in ("sequential", "pipelined") if streams["stages"].get(m)]
    names = sorted({n for m in modes for n in streams["stages"][m]}, key=_stage_order)
    if not names:
        return False
    height = 0.8 / len(modes)
    for k, mode in enumerate(modes):
        stages = streams["stages"][mode]
        values = [_per_frame_ms(stages.get(n)) for n in names]
        ax.barh([i + k * height for i in range(len(names))], values, height=height, label=mode)
    ax.set_yticks([i + height * (len(modes) - 1) / 2 for i in range(len(names))])
    ax.set_yticklabels(["%s%s" % (n, "" if n in PIPELINE_STAGES else " (graph)") for n in names])
    ax.invert_yaxis()
    ax.set_xlabel("ms per source frame (mean × runs per frame)")
    ax.set_title("Time per frame by stage; graphs run inside their stage")
    ax.legend()
    ax.grid(True, axis="x", alpha=0.3)
    return True


def _gated_vs_fine(ax, streams: Dict[str, Any]) -> bool:
    cmp = streams.get("gated_vs_always_fine")
    if not _measured(cmp):
        return False
    gated, fine = streams["throughput"]["pipelined"], streams["always_fine"]
    acc_g, acc_f = streams["accuracy"], cmp.get("always_fine_accuracy") or {}
    rows = [("ms per frame", _inverse_ms(gated["fps"]), _inverse_ms(fine["fps"])),
            ("GMACs per frame", gated["gmacs_per_frame"], fine["gmacs_per_frame"])]
    if _measured(acc_g):
        rows += [("segment accuracy %", _pct(acc_g.get("segment_accuracy")), _pct(acc_f.get("segment_accuracy"))),
                 ("frame accuracy %", _pct(acc_g.get("frame_accuracy")), _pct(acc_f.get("frame_accuracy")))]
    rows = [r for r in rows if r[1] is not None and r[2] is not None]
    width = 0.38
    for i, (_, g, f) in enumerate(rows):
        top = max(g, f) or 1.0
        for dx, value, label, colour in ((-width / 2, g, "gated", "C0"), (width / 2, f, "always fine", "C1")):
            ax.bar(i + dx, value / top, width, color=colour, label=label if i == 0 else None)
            ax.text(i + dx, value / top + 0.01, _fmt(value), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([r[0] for r in rows])
    ax.set_ylim(0, 1.15)
    ax.set_ylabel("relative to the larger of the two")
    ax.set_title("Gated vs always-fine (the same bundle, every gate forced to fine), pipelined")
    ax.legend()
    return True


def _horizontal() -> Dict[str, Any]:
    """boxplot's horizontal switch: ``orientation`` from matplotlib 3.10, ``vert`` before."""
    import matplotlib
    major, minor = (int(x) for x in matplotlib.__version__.split(".")[:2])
    return {"orientation": "horizontal"} if (major, minor) >= (3, 10) else {"vert": False}


def _stage_order(name: str):
    return (PIPELINE_STAGES.index(name) if name in PIPELINE_STAGES else len(PIPELINE_STAGES), name)


def _per_frame_ms(stage: Optional[Dict[str, Any]]) -> float:
    if not stage or stage.get("mean") is None or stage.get("per_frame") is None:
        return 0.0  # drawn as no bar: the stage did not run in this mode
    return stage["mean"] * stage["per_frame"]


def _inverse_ms(fps: Optional[float]) -> Optional[float]:
    return 1000.0 / fps if fps else None


def _pct(x: Optional[float]) -> Optional[float]:
    return None if x is None else 100.0 * x


def _fmt(x: Any) -> str:
    return "–" if x is None else ("%.3g" % x if isinstance(x, float) else str(x))
