"""What ``edgevid run BUNDLE --source S [--json] [--out-video F]`` does, minus the printing.

The CLI passes ``emit=print`` (or its own writer): each prediction arrives as one formatted line, a
JSON object with ``json_lines`` or a fixed-width text line otherwise. The library itself never prints.
"""
from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Union

from ..backends.registry import backend_class, backend_names, precision_plan, resolve_backend
from ..bundle import Bundle, load_bundle
from ..errors import ConfigError, EdgevidError
from ..log import get_logger
from .source import open_source
from .prediction import Prediction
from .stream import StreamRuntime

log = get_logger(__name__)


def format_prediction(pred: Prediction, json_lines: bool = False) -> str:
    """One output line: ``{"frame_index": …}`` or ``#    12    1.20s  walk  0.873  fine    41.2 ms``; a fused
    prediction adds each member's label, score and weight: ``[colour walk 0.81 ×0.62 | flow walk 0.93 ×0.38]``."""
    if json_lines:
        return json.dumps(pred.to_dict())
    line = "#%6d %8.2fs  %-16s %.3f  %-6s %7.1f ms" % (pred.frame_index, pred.timestamp, pred.label, pred.score,
                                                        pred.path, pred.latency * 1000.0)
    members = getattr(pred, "members", None)
    if members:
        line += "  [%s]" % " | ".join("%s %s %.2f ×%.2f" % (name, m["label"], m["score"], m["weight"])
                                      for name, m in members.items())
    return line


def make_runtime(bundle: Bundle, *, backend: str = "auto", precision: Optional[str] = None,
                 **runtime_options: Any) -> StreamRuntime:
    """The StreamRuntime of ``edgevid run``: ``precision`` planned per role (``run_stream`` says how)."""
    # planned per role here, and an explicit backend's own artifacts must exist at it (TensorRT: engines); auto
    # without a precision is left to the registry, which picks TensorRT only where the default engines exist
    if backend != "auto":
        resolve_backend(backend)  # a backend that is not installed is said first: engines could not be built here
    kind = backend_class(backend).ARTIFACT_KIND if backend != "auto" else "onnx"
    plan = precision_plan(bundle, precision, kind) if precision is not None or backend != "auto" else None
    return StreamRuntime(bundle, backend, precision=plan, **runtime_options)


def run_stream(bundle_path: Union[str, Path], source: Any, *, backend: str = "auto", precision: Optional[str] = None,
               json_lines: bool = False,
               out_video: Optional[Union[str, Path]] = None, max_frames: Optional[int] = None,
               fps: Optional[float] = None, loop: bool = False, live: Optional[bool] = None, retries: int = 5,
               pipelined: bool = True, queue_size: int = 4,
               threads: Optional[int] = None, emit: Optional[Callable[[str], None]] = None,
               on_prediction: Optional[Callable[[Prediction], None]] = None, **policy_options: Any) -> Dict[str, Any]:
    """Stream ``source`` through the bundle; returns the run's stats (JSON-able) with a few run facts.

    ``precision`` (fp32, fp16, int8) runs each role at it where the family rules allow, fp32 elsewhere
    (backends.registry.precision_plan; stats ``sessions`` says what each role ran). None: fp32 on ONNX Runtime;
    on TensorRT each role at what ``edgevid build`` makes by default (backends.registry.role_precision: the
    family's TensorRT default, fp32 where the rules or quantize keep the role fp32), so a bundle built with the
    defaults runs on its engines without flags.
    ``fps`` defaults to the bundle's ``policy.step_fps`` (the rate the model was trained at; None keeps
    every frame; a SlowFast bundle's clip sampler then sees frames at its own spacing already). ``live``: see
    ``open_source`` (None guesses from the spec; True reconnects any source that stops), as ``retries``.
    ``policy_options`` go to StreamRuntime (LiteEval: ``fine_cap``, ``fine_window``; SlowFast: ``every``,
    ``smooth``, ``pad``; PreRNN: ``max_steps``, ``max_gap_s``, ``scene_cut``; None values are ignored).
    ``emit(line)`` receives each prediction formatted by :func:`format_prediction`;
    ``on_prediction(pred)`` receives the Prediction itself. ``max_frames`` stops after that many. An interrupt
    (KeyboardInterrupt: Ctrl-C, or SIGTERM under the CLI) ends the run like the source's end, after the stages
    stopped and the annotated video was closed; ``interrupted`` says so. An EdgevidError during the run (a live
    source that did not come back, a stage that failed) is raised after the same cleanup, carrying the run's
    stats so far as ``stats`` (with ``error``), so the caller can still write them.
    """
    bundle = load_bundle(bundle_path)
    runtime = make_runtime(bundle, backend=backend, precision=precision, pipelined=pipelined, queue_size=queue_size,
                           threads=threads, **policy_options)
    return drive(runtime, source, {"bundle": str(bundle.root), "family": bundle.family},
                 step_fps=fps if fps is not None else bundle.policy.get("step_fps"), json_lines=json_lines,
                 out_video=out_video, max_frames=max_frames, loop=loop, live=live, retries=retries, emit=emit,
                 on_prediction=on_prediction)


def drive(runtime: Any, source: Any, facts: Dict[str, Any], *, step_fps: Optional[float], json_lines: bool = False,
          out_video: Optional[Union[str, Path]] = None, max_frames: Optional[int] = None, loop: bool = False,
          live: Optional[bool] = None, retries: int = 5, emit: Optional[Callable[[str], None]] = None,
          on_prediction: Optional[Callable[[Prediction], None]] = None) -> Dict[str, Any]:
    """Open ``source`` at ``step_fps`` and stream it through ``runtime`` (a StreamRuntime, or a runtime with the same
    ``run``, ``stats`` and ``pipelined``: the fusion's) as :func:`run_stream` says; ``facts`` head the result."""
    if max_frames is not None and (isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 1):
        raise ConfigError("max_frames is %r" % (max_frames,), "it must be a positive whole number",
                          "leave it unset to run to the end of the source")
    interrupted, failed = False, None
    with contextlib.ExitStack() as stack:
        src = stack.enter_context(open_source(source, fps=step_fps, loop=loop, live=live, retries=retries))
        writer = None
        if out_video is not None:
            from .annotate import AnnotatedVideoWriter
            writer = stack.enter_context(AnnotatedVideoWriter(out_video, src.fps or 10.0))
        predictions = stack.enter_context(contextlib.closing(runtime.run(src)))
        try:
            for count, pred in enumerate(predictions, 1):
                if writer is not None:
                    writer.write(pred.image, pred)
                if emit is not None:
                    emit(format_prediction(pred, json_lines))
                if on_prediction is not None:
                    on_prediction(pred)
                if max_frames is not None and count >= max_frames:
                    break
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM from systemd (cli.py): the run's stats are still the result
            interrupted = True
        except EdgevidError as e:  # a source gone for good, a stage that failed: raised with the stats so far
            failed = e
    result = dict(facts, source=src.name, live=src.live, step_fps=src.fps, pipelined=runtime.pipelined,
                  out_video=None if out_video is None else str(out_video), interrupted=interrupted,
                  error=None if failed is None else str(failed))
    result.update(runtime.stats.to_dict())
    # what actually ran (one name, or names joined by +), never the requested "auto"
    result["backend"] = backend_names(result["sessions"])
    if failed is not None:
        failed.stats = result
        raise failed
    return result
