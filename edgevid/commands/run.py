"""``edgevid run BUNDLE --source S``: predictions on stdout (text or JSON lines), a summary on stderr."""
from __future__ import annotations

import sys

from ..errors import EdgevidError
from ..fsutil import write_json
from ..runtime.cli_run import run_stream

INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for an interrupted tool


def main(args) -> int:
    try:
        stats = stream(args)
    except EdgevidError as e:
        if args.stats and getattr(e, "stats", None) is not None:  # what the run measured before it failed
            write_json(args.stats, e.stats)
            print(summary_line(e.stats), file=sys.stderr)
        raise
    return report(args, stats)


def stream(args):
    from ..fusion.bundle import is_fusion_bundle

    if is_fusion_bundle(args.bundle):
        from ..fusion.runtime import run_fusion_stream as run
    else:
        run = run_stream
    return run(args.bundle, args.source, backend=args.backend, precision=args.precision, json_lines=args.json,
               out_video=args.out_video, max_frames=args.max_frames, fine_cap=args.fine_cap,
               fine_window=args.fine_window, max_steps=args.reset_every, max_gap_s=args.max_gap,
               scene_cut=args.scene_cut,
               every=args.every, smooth=args.smooth, pad=args.pad, fps=args.fps, loop=args.loop,
               live=True if args.live else None, retries=args.retries, on_bad_frame=args.on_bad_frame,
               pipelined=not args.sequential, preprocess=args.preprocess,
               emit=lambda line: print(line, flush=True))


def report(args, stats) -> int:
    if args.stats:
        write_json(args.stats, stats)
    print(summary_line(stats), file=sys.stderr)
    if args.out_video:
        print("annotated video: %s" % args.out_video, file=sys.stderr)
    if stats.get("source_ended_early"):
        print("edgevid run: warning: %s" % stats["source_ended_early"], file=sys.stderr)
    if stats["interrupted"]:
        print("edgevid run: interrupted%s" % (" (stats written to %s)" % args.stats if args.stats else ""),
              file=sys.stderr)
        return INTERRUPTED
    return 0


def summary_line(stats) -> str:
    """One human line: frames, FPS, what the family's policy did, GMACs, latency percentiles, drops.

    The latency is from capture to label; a file source is read as fast as the pipeline takes frames, so
    frames wait in its queues and the figure includes that wait (said in the line)."""
    lat = stats.get("latency_ms") or {}
    family = stats["family"]
    if family == "fusion":
        policy = "fused %s: %s" % (stats["fusion"]["method"], "; ".join(
            "%s (%s, %s) %s FPS" % (name, m["family"], m["modality"], _num(m["fps"]))
            for name, m in stats["members"].items()))
    elif family == "slowfast":
        policy = "%d clips run (%d frames held the latest label, %d warm-up), %s GMACs per frame" % (
            stats.get("clips", 0), stats.get("held", 0), stats.get("warmup_frames", 0),
            _num(stats.get("gmacs_per_frame"), "%.2f"))
    elif family == "prernn":
        causes = stats.get("resets_by_cause") or {}
        detail = " (%s)" % ", ".join("%s %d" % kv for kv in sorted(causes.items())) if causes else ""
        policy = "%s GMACs per frame, %d state resets%s" % (_num(stats.get("gmacs_per_frame"), "%.3f"),
                                                            stats.get("resets", 0), detail)
    else:  # liteeval (families.NAMES)
        policy = "fine model on %s of frames, %s GMACs saved vs always-fine" % (
            _pct(stats["fine_rate"]), _pct(stats["gmacs_saved"]))
    queued = "" if stats.get("live", True) else " (a file read as fast as possible: includes queueing)"
    where = (stats.get("preprocess") or {}).get("where", "cpu").upper()
    return "%d frames, %s FPS, %s, capture-to-label latency p50 %s / p90 %s / p99 %s ms%s, %d dropped, frames " \
        "prepared on the %s" % (stats["frames"], _num(stats["fps"]), policy, _num(lat.get("p50")),
                                _num(lat.get("p90")), _num(lat.get("p99")), queued, stats["dropped"], where)


def _num(x, fmt: str = "%.1f") -> str:
    return "n/a" if x is None else fmt % x


def _pct(x) -> str:
    return "n/a" if x is None else "%.1f%%" % (100.0 * x)
