"""``edgevid demo --model fusion``: colour + optical flow on the synthetic motion classes, fused by boost-u (seed 000).

::

    synthetic data ─► PreRNN on colour frames ─┐
                   └► PreRNN on flow images ───┴─► export both ─► learn_fusion on the validation videos
      ─► stream the held-out video once through the fusion (flow stage + both members side by side)
      ─► accuracy of each member, of boost-u, of boost-c and of equal weights against ground truth, side by side
      ─► each member streamed alone: the fused stream's FPS against its slowest member

Seven of the synthetic classes differ only in motion and three only in fine texture (edgevid.data.synthetic), so
the flow member sees what the colour member misses on the first and nothing of the second: the fusion has
something to gain. Both members are PreRNN-SIH (the family demo's small VGG @112), trained with the same
settings; only their input differs. One run of the fused stream gives every accuracy: each member's scores ride
along with the fused prediction, and boost-c and equal weights are applied to those same scores.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from ..errors import ConfigError
from ..fsutil import atomic_dir, write_json
from ..log import get_logger
from ..fusion.weights import fuse, member_weight, weight_text
from . import prernn
from .steps import QUICK_NOTE, make_data, timed

log = get_logger(__name__)

TITLE = "Fusion (seed 000): PreRNN-SIH on colour + PreRNN-SIH on optical flow, boost-u"
FULL, QUICK = prernn.FULL, prernn.QUICK
FLOW = {"method": "dis", "bound": 8.0, "size": 112}  # the synthetic motions move a few pixels per frame at 112
# Both members reset their state, and the flow restarts, at a scene cut: the held-out stream is made of clips, and
# flow across a cut is no motion of one scene. SceneCut's score on the stream: every clip boundary >= 0.069 (10th
# percentile 0.086), 99% of the frames within a clip <= 0.056.
SCENE_CUT = 0.06


def run(out: Any, *, seed: int = 0, quick: bool = False, overwrite: bool = False, settings: Any = None,
        progress: Optional[Callable[[str], None]] = None, show_bars: bool = False) -> Dict[str, Any]:
    """The whole fusion demo into ``out``; returns the report (also ``out/report.json``)."""
    from ..data.flow import FlowSpec
    from ..fusion.learn import learn_fusion

    s = settings or (QUICK if quick else FULL)
    say = progress or (lambda message: log.info("%s", message))
    out = Path(out)
    if out.exists() and not overwrite:
        raise ConfigError("the demo output folder %s already exists" % out, None,
                          "pass --overwrite to replace it, or choose another --out")
    flow = FlowSpec(**FLOW)
    timings: Dict[str, float] = {}
    with atomic_dir(out, overwrite=overwrite) as tmp:
        say("1/6 generating synthetic data")
        data = timed(timings, "data", make_data, tmp / "data", s, seed)
        trained = {}
        for k, (name, member_flow) in enumerate((("colour", None), ("flow", flow))):
            say("%d/6 training the %s member (%s) on %d videos" % (2 + k, name, prernn.TITLE, data["train_videos"]))
            (tmp / name).mkdir()
            trained[name] = timed(timings, "train_" + name, prernn.train, tmp / name, data, s, seed, show_bars,
                                   member_flow)
            timed(timings, "export_" + name, prernn.export, trained[name], tmp / name / "bundle", s, member_flow,
                  SCENE_CUT)
        say("4/6 learning the fusion weights on the %d validation videos" % data["val_videos"])
        fusion = timed(timings, "learn", learn_fusion, [(n, tmp / n / "bundle") for n in trained],
                        data["root"] / "val", tmp / "fusion")
        say("5/6 streaming the held-out video through the fusion")
        fused = timed(timings, "stream", _fused_stream, tmp, data["stream"])
        say("6/6 streaming each member alone (speed)")
        alone = {n: timed(timings, "alone_" + n, _alone, tmp / n / "bundle", data["stream"]) for n in trained}
        report = _report(s, seed, quick or s == QUICK, data, fusion, fused, alone, trained, timings)
        write_json(tmp / "report.json", report)
    return report


def _fused_stream(tmp: Path, stream: Path) -> Dict[str, Any]:
    from ..fusion.runtime import run_fusion_stream

    predictions: List[Any] = []
    stats = run_fusion_stream(tmp / "fusion", str(stream), backend="ort", out_video=tmp / "annotated.avi",
                              on_prediction=predictions.append)
    with open(str(tmp / "predictions.jsonl"), "w") as f:
        f.writelines(json.dumps(p.to_dict()) + "\n" for p in predictions)
    return {"stats": stats, "predictions": predictions}


def _alone(bundle: Path, stream: Path) -> Dict[str, Any]:
    from ..runtime.cli_run import run_stream

    stats = run_stream(bundle, str(stream), backend="ort")
    return {"fps": stats["fps"], "latency_ms": stats["latency_ms"], "stages_ms": stats["stages_ms"]}


def _report(s, seed, quick, data, fusion, fused, alone, trained, timings) -> Dict[str, Any]:
    from ..data.scoring import score_stream
    from ..data.synthetic import read_stream_labels

    truth = read_stream_labels(data["stream"])
    preds = fused["predictions"]
    names = [m.name for m in fusion.members]
    labels = list(fusion.labels)
    held = fusion.meta["held_out"]
    weightings = {fusion.weights.method: np.asarray(fusion.weights.theta),
                  **{k: np.asarray(v["theta"]) for k, v in held["compare"].items()},
                  "equal": np.full(len(names), 1.0 / len(names))}

    def score(label_of: Callable[[Any], Optional[str]]) -> Dict[str, Any]:
        rows = [{"frame_index": p.frame_index, "label": label_of(p)} for p in preds]
        return score_stream([r for r in rows if r["label"] is not None], truth["segments"], truth["fps"])

    members = {}
    for name in names:
        members[name] = {"accuracy": score(lambda p, n=name: _label(p.member_scores.get(n), labels)),
                         "fps_alone": alone[name]["fps"], "weight": member_weight(weightings[fusion.weights.method],
                                                                               names.index(name)),
                         "held_out_accuracy": held["accuracy"][name],
                         "training": prernn.training_summary(trained[name])}
    fused_by = {method: {"theta": theta.round(6).tolist(),
                         "accuracy": score(lambda p, t=theta: _label(_fuse(p, names, t), labels))}
                for method, theta in weightings.items()}
    stats = fused["stats"]
    slowest = min(m["fps_alone"] for m in members.values())
    flow_ms = (stats["stages_ms"].get("flow") or {}).get("p50")
    return {
        "model": "fusion", "title": TITLE, "seed": seed, "quick": bool(quick), "settings": asdict(s), "flow": FLOW,
        "scene_cut": SCENE_CUT,
        "notes": ([QUICK_NOTE] if quick else []) + [
            "every accuracy is on the held-out stream, from one fused run: each member's own scores ride along "
            "with the fused prediction; boost-c and equal weights are applied to the same scores",
            "the weights were learned on the validation videos (also the members' model selection), never on the "
            "stream"],
        "accuracy": fused_by[fusion.weights.method]["accuracy"], "members": members, "fusion": fused_by,
        "held_out": held, "fps": stats["fps"], "slowest_member_fps_alone": slowest,
        "fps_vs_slowest_member": stats["fps"] / slowest if stats["fps"] and slowest else None,
        "flow_ms_p50": flow_ms, "latency_ms": stats["latency_ms"], "stages_ms": stats["stages_ms"],
        "frames": stats["frames"], "backend": stats["backend"], "sessions": stats["sessions"],
        "files": {"fusion": "fusion", "members": {n: "%s/bundle" % n for n in names}, "stream": "data/stream.avi",
                  "annotated_video": "annotated.avi", "predictions": "predictions.jsonl"},
        "timings_s": timings,
    }


def _fuse(pred: Any, names: List[str], theta: np.ndarray) -> Optional[np.ndarray]:
    """The fused scores of a prediction's member scores with weights ``theta`` (None before every member scored)."""
    scores = [pred.member_scores.get(n) for n in names]
    return None if any(p is None for p in scores) else fuse([p[None] for p in scores], theta)[0]


def _label(scores: Optional[np.ndarray], labels: List[str]) -> Optional[str]:
    return None if scores is None else labels[int(np.argmax(scores))]


def format_report(report: Dict[str, Any], out: Any) -> str:
    """The CLI summary: each member's and each weighting's accuracy side by side, then speed."""
    rows = [("%s member" % n, m["accuracy"], "weight %s" % weight_text(m["weight"])) for n, m in
            report["members"].items()]
    rows += [("fused %s" % k, v["accuracy"], "") for k, v in report["fusion"].items()]
    quick = report.get("quick")
    lines = ["%s, ONNX Runtime on CPU%s" % (report["title"], " (--quick: a smoke test)" if quick else "")]
    if quick:
        lines.append("  note            quick run on tiny data: accuracy is not meaningful")
    lines.append("  %-22s %9s %9s   per class (segments)" % ("held-out stream", "segments", "frames"))
    for name, acc, extra in rows:
        classes = " ".join("%s %.0f" % (c, 100 * a) for c, a in acc["per_class_segment_accuracy"].items())
        lines.append("  %-22s %8.1f%% %8.1f%%   %s %s" % (name, 100 * acc["segment_accuracy"],
                                                       100 * (acc["frame_accuracy"] or 0.0), classes, extra))
    lat = report["latency_ms"]
    lines += [
        "  speed           fused %.1f FPS vs the slowest member alone %.1f FPS (%.2f×); flow %.2f ms per frame (p50)" % (
            report["fps"], report["slowest_member_fps_alone"], report["fps_vs_slowest_member"] or 0.0,
            report["flow_ms_p50"] or 0.0),
        "  latency         p50 %.1f / p99 %.1f ms from capture to fused label (a file read as fast as possible: "
        "includes queueing)" % (lat["p50"], lat["p99"]),
        "report:          %s/report.json" % out,
        "annotated video: %s/%s" % (out, report["files"]["annotated_video"]),
        "fusion bundle:   %s/fusion  (try: edgevid run %s/fusion --source %s/%s)" % (out, out, out,
                                                                                    report["files"]["stream"]),
    ]
    return "\n".join(lines)

