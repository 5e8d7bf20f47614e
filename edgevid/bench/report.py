"""The bench report: its schema (docs/bench.md §1), the output folder, bench.json and bench.md written atomically,
the artifact sizes, and ``compare`` of two reports."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

from ..errors import ConfigError, DataError
from ..fsutil import atomic_path, write_json

SCHEMA = "edgevid.bench/1"  # name/major: a new major changes the meaning of a field; compare refuses across majors
REPORT = "bench.json"
MARKDOWN = "bench.md"
SECTIONS = ("context", "graphs", "streams", "memory", "files", "plots")


def schema_major(schema: Any) -> Tuple[str, int]:
    """("edgevid.bench", 1) from "edgevid.bench/1"; DataError for anything else."""
    name, _, major = str(schema).partition("/")
    if name != SCHEMA.partition("/")[0] or not major.isdigit():
        raise DataError("%r is not an edgevid bench report schema" % (schema,),
                        "bench reports say \"schema\": \"%s\"" % SCHEMA, "pass bench.json files written by edgevid bench")
    return name, int(major)


def check_out_dir(out: Path, overwrite: bool) -> None:
    """Refuse (ConfigError) a folder that exists and holds anything, unless ``overwrite``; checked before measuring,
    so a long run never ends in a refusal. A file where the folder should be is refused always."""
    if out.exists() and not out.is_dir():
        raise ConfigError("--out %s is a file" % out, "bench writes a folder of reports and plots",
                          "pass a folder path")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        held = sorted(p.name for p in out.iterdir())
        raise ConfigError("output folder %s is not empty" % out, "it holds %s%s" % (
            ", ".join(held[:5]), ", …" if len(held) > 5 else ""),
            "choose a new folder, or pass --overwrite to write bench.json, bench.md and the plots into it")


def artifact_files(bundle: Any) -> Dict[str, List[Dict[str, Any]]]:
    """The ``files`` section: per role, each ONNX graph and engine with its precision, form and size in bytes."""
    out: Dict[str, List[Dict[str, Any]]] = {}
    for role in bundle.rules.roles:
        rows = []
        for a in bundle.graph(role).all_artifacts():
            if a.kind not in ("onnx", "engine"):
                continue
            path = bundle.path(a)
            rows.append({"kind": a.kind, "precision": a.precision or "fp32", "target": a.info.get("target"),
                         "file": a.file, "bytes": path.stat().st_size if path.is_file() else None})
        out[role] = rows
    return out


def new_report(bundle: Any, options: Dict[str, Any]) -> Dict[str, Any]:
    """The frame every report has: schema, the bundle, the options it ran with and every section, unfilled."""
    report: Dict[str, Any] = {"schema": SCHEMA, "bundle": {"root": str(bundle.root), "family": bundle.family},
                              "options": dict(options)}
    report.update({name: {"not_measured": "not run"} for name in SECTIONS})
    report["plots"] = []
    return report


def write_report(report: Dict[str, Any], out_dir: Path) -> List[Path]:
    """bench.json and bench.md in ``out_dir`` (created), each through a temporary file and a rename."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / REPORT, report)
    with atomic_path(out_dir / MARKDOWN) as tmp:
        tmp.write_text(markdown(report))
    return [out_dir / REPORT, out_dir / MARKDOWN]


def load_report(path: Path) -> Dict[str, Any]:
    """A bench.json; DataError when it is missing, not JSON or of no bench schema."""
    try:
        report = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise DataError("cannot read bench report %s" % path, str(e),
                        "pass a bench.json written by edgevid bench") from e
    if not isinstance(report, dict):
        raise DataError("%s is not a bench report" % path, "it holds no JSON object", "pass a bench.json")
    schema_major(report.get("schema"))
    return report


# markdown --------------------------------------------------------------------------------------------------
def markdown(report: Dict[str, Any]) -> str:
    lines = ["# edgevid bench: %s (%s)" % (report["bundle"]["root"], report["bundle"]["family"]), "",
             "schema `%s`; options: %s" % (report["schema"], ", ".join("%s=%s" % kv for kv in
                                                                      sorted(report["options"].items())))]
    lines += _context_md(report["context"]) + _graphs_md(report["graphs"]) + _files_md(report["files"])
    lines += ["", "## Streams", ""] + _streams_md(report["streams"])
    lines += ["", "## Memory", ""] + _memory_md(report["memory"])
    lines += ["", "## Plots", ""] + (["![%s](%s)" % (p, p) for p in report["plots"]]
                                      or ["none written: %s" % report.get("plots_not_written", "nothing to plot")])
    return "\n".join(lines) + "\n"


def _context_md(context: Dict[str, Any]) -> List[str]:
    if "not_measured" in context:
        return ["", "## Machine", "", "not measured: %s" % context["not_measured"]]
    cpu, peak = context["cpu"], context["matmul_peak"]
    lines = ["", "## Machine", "", "- CPU: %s, %s cores (%s usable), flags %s" % (
        cpu["model"], cpu["cores"], cpu["usable_cores"], " ".join(cpu["flags"]) if isinstance(cpu["flags"], list)
        else cpu["flags"]),
             "- Python %s, %s" % (context["python"], ", ".join("%s %s" % kv for kv in context["libraries"].items())),
             "- float32 matmul peak (%d×%d): %s GFLOP/s by %s (numpy %s, ONNX Runtime %s); int8 (ONNX Runtime "
             "MatMulInteger) %s GOP/s" % (peak["n"], peak["n"], _num(peak["peak_gflops"]), peak["peak_by"],
                                          _num(peak["numpy_gflops"]), _num(peak["onnxruntime_gflops"]),
                                          _num(peak.get("int8_peak_gops")))]
    lines += ["- Jetson: %s" % "; ".join("%s: %s" % kv for kv in context["jetson"].items())]
    return lines


def _graphs_md(graphs: Dict[str, Any]) -> List[str]:
    lines = ["", "## Graphs", ""]
    if "not_measured" in graphs:
        return lines + ["not measured: %s" % graphs["not_measured"]]
    lines += ["%d timed runs after %d warm-up runs per graph; ms; GFLOP/s = 2 × GMACs / mean; of peak: INT8 of "
              "the int8 matmul peak, every other precision of the float32 one." % (
        graphs["runs"], graphs["warmup"]), "",
        "| role | backend | precision | mean | p50 | p90 | p99 | min | max | FPS | GFLOP/s | of peak | vs FP32 | vs eager |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in graphs["results"]:
        s = r["latency_ms"]
        lines.append("| %s | %s | %s | %s |" % (r["role"], r["backend"], r["precision"], " | ".join(
            [_num(s[k]) for k in ("mean", "p50", "p90", "p99", "min", "max", "fps")]
            + [_num(r["gflops"]), _pct(r["peak_share"]), _num(r["vs_fp32"], "%.2f×"),
               _num(r.get("vs_torch"), "%.2f×")])))
    lines += [""] + ["- inputs of %s: %s" % (role, _inputs(i)) for role, i in graphs["inputs"].items()]
    lines += ["- GFLOP/s of %s on %s at %s: %s" % (r["role"], r["backend"], r["precision"], r["why"])
              for r in graphs["results"] if r.get("why")]
    lines += ["- %s at fp32, not %s: %s" % (role, graphs["precision_asked"], why) for role, why in graphs["kept_fp32"].items()]
    lines += ["- %s not timed: %s" % kv for kv in graphs["skipped_backends"].items()]
    torch = graphs["torch"]
    lines += ["- PyTorch eager not timed: %s" % torch["not_measured"] if "not_measured" in torch else
              "- PyTorch eager (backend torch, %d threads): %s; vs eager = its mean over the graph's" % (
                  torch["threads"], torch["what"])]
    return lines


def _inputs(i: Dict[str, Any]) -> str:
    return "%s (%d)%s" % (i["kind"], i["samples"], "; %s" % i["why"] if i.get("why") else "")


def _files_md(files: Dict[str, Any]) -> List[str]:
    lines = ["", "## Files", ""]
    if "not_measured" in files:
        return lines + ["not measured: %s" % files["not_measured"]]
    lines += ["| role | kind | precision | form | file | MiB |", "|---|---|---|---|---|---|"]
    for role, rows in files.items():
        lines += ["| %s | %s | %s | %s | %s | %s |" % (role, f["kind"], f["precision"], f["target"] or "–",
                                                      f["file"], _num(None if f["bytes"] is None
                                                                      else f["bytes"] / 2 ** 20, "%.3f"))
                  for f in rows]
    return lines


RUNS = (("pipelined", "read as fast as possible, pipelined"), ("sequential", "read as fast as possible, sequential"),
        ("paced", "paced at the source's frame rate"), ("always_fine", "every gate forced to fine, pipelined"))


def _streams_md(streams: Any) -> List[str]:
    """The stream runs as one table, then the limit, accuracy and gated lines (all figures stay in bench.json)."""
    if not isinstance(streams, dict) or "not_measured" in streams:
        return _leaves_md(streams)
    runs = dict(streams.get("throughput") or {}, paced=streams.get("paced"), always_fine=streams.get("always_fine"))
    prepared = ((runs.get("pipelined") or {}).get("preprocess") or {}).get("where", "cpu").upper()
    lines = ["Source `%s` (%s backend, frames prepared on the %s); the first %s predictions of each run are "
             "warm-up." % (streams.get("source"), streams.get("backend"), prepared, streams.get("warmup_predictions")),
             "",
        "| run | FPS | capture-to-label p50 / p99 ms | dropped | fine rate | GMACs / frame |", "|---|---|---|---|---|---|"]
    for key, what in RUNS:
        run = runs.get(key)
        if not isinstance(run, dict) or "not_measured" in run:
            reason = run.get("not_measured") if isinstance(run, dict) else "not run"
            lines.append("| %s | not measured: %s | | | | |" % (what, reason))
            continue
        lat = run.get("latency_ms") or {}
        lines.append("| %s | %s | %s / %s | %s | %s | %s |" % (what, _num(run.get("fps")), _num(lat.get("p50")),
                     _num(lat.get("p99")), run.get("dropped"), _pct(run.get("fine_rate")), _num(run.get("gmacs_per_frame"))))
    lines += [""] + _stream_lines(streams)
    return lines


def _stream_lines(streams: Dict[str, Any]) -> List[str]:
    out = []
    ratio = (streams.get("throughput") or {}).get("pipelined_over_sequential")
    out.append("- pipelined / sequential FPS: %s" % _num(ratio, "%.2f"))
    bound = streams.get("compute_bound") or {}
    if "not_measured" not in bound:
        out.append("- compute-bound limit %s FPS (%s ms of graphs per frame); pipelined reaches %s of it" % (
            _num(bound.get("limit_fps")), _num(bound.get("compute_ms_per_frame")), _pct(bound.get("pipelined_over_limit"))))
    paced = streams.get("paced") or {}
    if "not_measured" not in paced:
        out.append("- paced capture-to-label p99 / per-frame compute: %s × the mean, %s × the p99" % (
            _num(paced.get("p99_over_per_frame_compute"), "%.2f"), _num(paced.get("p99_over_per_frame_compute_p99"), "%.2f")))
    acc = streams.get("accuracy") or {}
    if "not_measured" in acc:
        out.append("- accuracy: not measured: %s" % acc["not_measured"])
    else:
        delay = acc.get("change_delay") or {}
        out.append("- accuracy: %s of %s segments, %s of frames; a change is labelled right after %s frames "
                   "(p50; %s ms), %s of %s changes never" % (
                       _pct(acc.get("segment_accuracy")), acc.get("segments"), _pct(acc.get("frame_accuracy")),
                       _num((delay.get("frames") or {}).get("p50")), _num((delay.get("ms") or {}).get("p50")),
                       delay.get("missed"), delay.get("changes")))
    gated = streams.get("gated_vs_always_fine") or {}
    if isinstance(gated, dict) and "not_measured" not in gated:
        out.append("- gated / always-fine: time per frame %s, GMACs per frame %s, accuracy %s" % (
            _num(gated.get("time_per_frame"), "%.2f"), _num(gated.get("gmacs_per_frame"), "%.2f"),
            points_text(gated.get("accuracy_points"))))
    return out


def points_text(points: Any) -> str:
    """Gated minus always-fine accuracy as a reader says it: "segments +0.0, frames +5.0 points"."""
    if not isinstance(points, dict) or "not_measured" in points:
        return "not measured: %s" % (points or {}).get("not_measured", "no figures")
    return ", ".join("%s %s" % (name, "not measured" if points.get(key) is None else "%+.1f" % points[key])
                     for key, name in (("segment_accuracy", "segments"), ("frame_accuracy", "frames"))) + " points"


def _memory_md(memory: Any) -> List[str]:
    if not isinstance(memory, dict) or "not_measured" in memory:
        return _leaves_md(memory)
    tegra = memory.get("tegrastats")
    return ["- peak resident memory of the runtime path: %s MB (%s MB after `import edgevid`); torch loaded: %s" % (
                _num(memory.get("peak_rss_mb"), "%.1f"), _num(memory.get("baseline_rss_mb"), "%.1f"),
                memory.get("torch_loaded")),
            "- measured: %s" % memory.get("measures"),
            "- tegrastats: %s" % (tegra.get("not_measured") if isinstance(tegra, dict) and "not_measured" in tegra
                                  else "; ".join("%s: %s" % kv for kv in leaves(tegra)))]


def _leaves_md(section: Any) -> List[str]:
    if isinstance(section, dict) and "not_measured" in section:
        return ["not measured: %s" % section["not_measured"]]
    return ["- %s: %s" % (key, value) for key, value in leaves(section)] or ["empty"]


def _num(x: Any, fmt: str = "%.3g") -> str:
    return "–" if not isinstance(x, (int, float)) or isinstance(x, bool) else fmt % x


def _pct(x: Any) -> str:
    return "–" if not isinstance(x, (int, float)) else "%.0f%%" % (100 * x)


# compare ---------------------------------------------------------------------------------------------------
def leaves(data: Any, prefix: str = "") -> Iterator[Tuple[str, Any]]:
    """(dotted path, value) of every scalar in nested dicts (lists by index)."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield from leaves(value, "%s.%s" % (prefix, key) if prefix else str(key))
    elif isinstance(data, list):
        for k, value in enumerate(data):
            yield from leaves(value, "%s[%d]" % (prefix, k))
    else:
        yield prefix, data


def graph_figures(report: Dict[str, Any]) -> Dict[str, float]:
    """{"graphs.<role>/<backend>/<precision>.<figure>": value} of each timed graph (keyed by what ran, not by
    position, so reports with different backends or precisions line up)."""
    out = {}
    for r in (report.get("graphs") or {}).get("results", []):
        key = "graphs.%s/%s/%s" % (r["role"], r["backend"], r["precision"])
        for figure in ("mean", "p50", "p99", "fps"):
            out["%s.%s" % (key, figure)] = r["latency_ms"][figure]
        out[key + ".gflops"] = r["gflops"]
    return out


def numeric_figures(report: Dict[str, Any]) -> Dict[str, float]:
    """Every number a report compares on: the graphs' figures, the machine's matmul peaks, and the numeric leaves
    of streams and memory."""
    out = graph_figures(report)
    peak = (report.get("context") or {}).get("matmul_peak") or {}
    out.update(("context.matmul_peak.%s" % k, peak.get(k)) for k in ("peak_gflops", "int8_peak_gops"))
    for name in ("streams", "memory"):
        out.update(("%s.%s" % (name, k), v) for k, v in leaves(report.get(name) or {}))
    return {k: float(v) for k, v in out.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


def compare(a: Dict[str, Any], b: Dict[str, Any]) -> Dict[str, Any]:
    """Ratios B / A of every figure both reports hold; figures only one holds are listed, not dropped silently.
    DataError for reports of different schema majors (a field may mean something else)."""
    (_, major_a), (_, major_b) = schema_major(a.get("schema")), schema_major(b.get("schema"))
    if major_a != major_b:
        raise DataError("the reports have different schemas (%s and %s)" % (a["schema"], b["schema"]),
                        "a field of one major version may mean something else in another",
                        "rerun edgevid bench with one version for both, then compare")
    fa, fb = numeric_figures(a), numeric_figures(b)
    rows = [{"figure": k, "a": fa[k], "b": fb[k], "ratio": _ratio(fa[k], fb[k])} for k in fa if k in fb]
    return {"schema": a["schema"], "a": _label(a), "b": _label(b), "rows": rows,
            "only_a": sorted(set(fa) - set(fb)), "only_b": sorted(set(fb) - set(fa))}


def _ratio(a: float, b: float) -> Optional[float]:
    return b / a if a else None  # a zero base has no ratio (not infinity)


def _label(report: Dict[str, Any]) -> str:
    context = report.get("context") or {}
    cpu = (context.get("cpu") or {}).get("model", "?")
    return "%s on %s" % ((report.get("bundle") or {}).get("root", "?"), cpu)


def compare_markdown(result: Dict[str, Any]) -> str:
    lines = ["A: %s" % result["a"], "B: %s" % result["b"], "",
             "| figure | A | B | B / A |", "|---|---|---|---|"]
    lines += ["| %s | %s | %s | %s |" % (r["figure"], _num(r["a"], "%.4g"), _num(r["b"], "%.4g"),
                                         _num(r["ratio"], "%.3f"))
              for r in result["rows"]]
    for side in ("only_a", "only_b"):
        if result[side]:
            lines += ["", "only in %s: %s" % (side[-1].upper(), ", ".join(result[side]))]
    return "\n".join(lines) + "\n"
