"""``edgevid bench`` as a library call: measure every section into one report, plot it, write it (docs/bench.md).

The stream and memory sections come from their own modules (``edgevid.bench.stream``, ``edgevid.bench.memory``,
and their plots from ``edgevid.bench.stream_plots``), called when they are part of this build; a section that
could not be measured says why in the report instead of holding zeros.
"""
from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from ..bundle import load_bundle
from ..errors import EdgevidError
from . import report as rep

Progress = Callable[[str], None]


def optional_module(name: str) -> Tuple[Optional[Any], Optional[str]]:
    """(the module ``edgevid.bench.<name>``, None) when this build has it, else (None, why not)."""
    full = "edgevid.bench." + name
    if importlib.util.find_spec(full) is None:
        return None, "%s is not part of this build of edgevid" % full
    return importlib.import_module(full), None


def optional_section(module: str, function: str, *args: Any, **kwargs: Any) -> Tuple[Dict[str, Any], Optional[EdgevidError]]:
    """(the section ``module.function(*args, **kwargs)`` measures, None), or ({"not_measured": why}, the error):
    an EdgevidError there (a source that ends during warm-up) leaves the other sections standing."""
    found, why = optional_module(module)
    if found is None:
        return {"not_measured": why}, None
    try:
        return getattr(found, function)(*args, **kwargs), None
    except EdgevidError as e:
        return {"not_measured": str(e), "error": type(e).__name__}, e


def measure(bundle_path: Any, *, source: str = "synthetic", backend: str = "auto", precision: Optional[str] = None,
            runs: int = 50, warmup: int = 5, frames: int = 300, peak_n: int = 2048,
            progress: Optional[Progress] = None, eager: Optional[Mapping[str, Any]] = None
            ) -> Tuple[Dict[str, Any], List[EdgevidError]]:
    """(the report without plots, the errors of sections that could not be measured). Graph-level errors (a backend
    or precision the bundle does not have) raise: nothing would be left to report. ``eager`` (role -> RoleGraph of
    the checkpoint, commands/checkpoints.py) adds PyTorch eager to the graphs, timed last."""
    from .context import machine_context, matmul_peak
    from .graphs import add_eager, check_counts, measure_graphs, plan_graphs

    say = progress or (lambda message: None)
    bundle = load_bundle(bundle_path)
    check_counts(runs, warmup)
    plan_graphs(bundle, backend, precision)  # a backend or precision the bundle lacks fails before any measuring
    report = rep.new_report(bundle, {"source": source, "backend": backend, "precision": precision, "runs": runs,
                                     "warmup": warmup, "frames": frames})
    say("context: machine, and the float32 matmul peak (n=%d)" % peak_n)
    report["context"] = dict(machine_context(), matmul_peak=matmul_peak(peak_n))
    report["graphs"] = measure_graphs(bundle, backend=backend, precision=precision, runs=runs, warmup=warmup,
                                      peak=report["context"]["matmul_peak"], progress=say)
    report["files"] = rep.artifact_files(bundle)
    say("streams: %s, %d frames" % (source, frames))
    report["streams"], e1 = optional_section("stream", "measure_streams", bundle, source, backend=backend,
                                             precision=precision, frames=frames, progress=say)
    say("memory: a separate process")
    report["memory"], e2 = optional_section("memory", "measure_memory", bundle.root, source, backend=backend,
                                            precision=precision, frames=frames)
    if eager:
        add_eager(report["graphs"], bundle, eager, peak=report["context"]["matmul_peak"], progress=say)
    return report, [e for e in (e1, e2) if e is not None]


def write_plots(report: Dict[str, Any], out_dir: Path) -> List[str]:
    """The PNGs of the graphs and, when this build has them, of the streams; their names in ``out_dir``."""
    from .._optional import available

    if not available("matplotlib"):  # the one check: the plot modules import it when they draw
        report["plots_not_written"] = "matplotlib is not installed (pip install matplotlib)"
        return []
    from .plots import write_graph_plots

    names = write_graph_plots(report, out_dir)
    stream_plots, _ = optional_module("stream_plots")
    if stream_plots is not None:
        names += stream_plots.write_stream_plots(report, out_dir)
    return names


def bench(bundle_path: Any, out_dir: Any, *, overwrite: bool = False, **options: Any
          ) -> Tuple[Dict[str, Any], List[EdgevidError]]:
    """Measure, plot and write bench.json + bench.md into ``out_dir`` (refused before measuring when it exists
    with files in it, unless ``overwrite``). Returns the report and the errors of unmeasured sections."""
    out_dir = Path(out_dir)
    rep.check_out_dir(out_dir, overwrite)
    report, errors = measure(bundle_path, **options)
    out_dir.mkdir(parents=True, exist_ok=True)
    report["plots"] = write_plots(report, out_dir)
    rep.write_report(report, out_dir)
    return report, errors
