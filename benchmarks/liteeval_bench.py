"""LiteEval on this CPU: what the gate buys, what pipelining buys, and ONNX Runtime vs PyTorch eager.

    python benchmarks/liteeval_bench.py [--work DIR] [--out benchmarks/results/cpu-2core] [--quick]

1. Gated vs always-fine on the synthetic data set: the demo's gated LiteEval and a head of the same
   size trained on the same cached features with every gate forced to "fine" (the paper's LSTM
   baseline), both scored on a held-out test set: accuracy of the last step and GMACs per frame.
   Target (issue 2): at most half the always-fine GMACs at no more than 1 point lower accuracy.
2. The exported bundle streamed through ONNX Runtime pipelined (stage threads) and sequentially, with the
   runtime's default threads (benchmarks/cpu_runtime_bench.py holds them against what the work costs alone).
3. Per-graph latency, batch 1: ONNX Runtime vs PyTorch eager on the same inputs.

Writes ``liteeval.json`` and ``liteeval.md`` into ``--out``. Every number is measured in this run.
"""
from __future__ import annotations

import argparse
import functools
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import time_calls, write_results  # noqa: E402

from edgevid.backends import open_session  # noqa: E402
from edgevid.data.folder import VideoFolder  # noqa: E402
from edgevid.data.synthetic import generate_dataset, generate_stream  # noqa: E402
from edgevid.demo.liteeval import FULL, QUICK  # noqa: E402
from edgevid.export import export_bundle  # noqa: E402
from edgevid.export.liteeval import liteeval_roles  # noqa: E402
from edgevid.models.liteeval import LiteEvalConfig, LiteEvalHead  # noqa: E402
from edgevid.bench.stream import throughput  # noqa: E402
from edgevid.train.liteeval import extract_features, liteeval_evaluate, liteeval_loss_fn, train_liteeval  # noqa: E402
from edgevid.train.loop import Trainer  # noqa: E402


class AlwaysFine(nn.Module):
    """A LiteEval head whose gate is forced to "fine" at every step (the always-fine baseline)."""

    def __init__(self, head: LiteEvalHead):
        super().__init__()
        self.head = head

    def forward(self, feat_c, feat_f, mask=None, tau=1.0):
        return self.head(feat_c, feat_f, mask=mask, tau=tau, gates=torch.ones(feat_c.shape[:2]))


def make_data(work: Path, s, test_per_class: int, seed: int):
    for name, per_class, offset in (("train", s.train_per_class, 0), ("test", test_per_class, 3000)):
        if not (work / name).is_dir():
            generate_dataset(work / name, per_class, num_frames=s.frames, fps=s.fps, seed=seed + offset)
    stream = work / "stream.avi"
    if not stream.is_file():
        generate_stream(stream, s.stream_segments, s.frames, fps=s.fps, seed=seed + 2000)
    return VideoFolder(work / "train", num_frames=s.frames), VideoFolder(work / "test", num_frames=s.frames), stream


def config_for(s, classes) -> LiteEvalConfig:
    return LiteEvalConfig(num_classes=len(classes), labels=list(classes), fine_arch="resnet18", coarse_proj=s.coarse_proj,
                          coarse_hidden=s.coarse_hidden, fine_hidden=s.fine_hidden, fine_proj=s.fine_proj)


def evaluate(model: nn.Module, feats) -> dict:
    model.eval()
    with torch.no_grad():
        return liteeval_evaluate(0.0, 0.0)(model, [(feats.feat_c, feats.feat_f, feats.labels, feats.mask)])


def train_always_fine(config, train_feats, s, seed: int, work: Path) -> nn.Module:
    torch.manual_seed(seed)
    model = AlwaysFine(LiteEvalHead(config))
    Trainer(model, lambda m: torch.optim.Adam(m.parameters(), lr=s.lr, weight_decay=1e-4),
            liteeval_loss_fn(1.0, 0.0), (train_feats.feat_c, train_feats.feat_f, train_feats.labels, train_feats.mask),
            epochs=s.epochs, batch_size=s.batch_size, checkpoint=work / ("always_fine-s%d.pt" % seed), seed=seed).fit()
    return model


def gate_vs_fine(work: Path, s, test_per_class: int, seeds, gammas) -> tuple:
    """Gated heads for each γ (target fine fraction) and always-fine heads, on the same features, one per
    training seed (head initialisation, Gumbel noise, batch order); the backbones and data come from the
    first seed. Scores are means over seeds. The first γ's first-seed model is the one exported and streamed."""
    train_set, test_set, stream = make_data(work, s, test_per_class, seeds[0])
    config = config_for(s, train_set.classes)
    runs = {gamma: [train_liteeval(config, train_set, None, out=work / ("gated-%g-s%d.pt" % (gamma, seed)),
                                   epochs=s.epochs, batch_size=s.batch_size, lr=s.lr, fine_fraction_target=gamma,
                                   tau_rate=s.tau_rate, seed=seed, adapt_bn=s.adapt_bn, bn_frames=s.bn_frames,
                                   cache_dir=work / "cache", backbone_seed=seeds[0]).model for seed in seeds]
            for gamma in gammas}  # same backbones for every run, so the features are computed once
    first = runs[gammas[0]][0]
    feats = {name: extract_features(ds, first.coarse_cnn, first.fine_cnn, cache_dir=work / "cache")
             for name, ds in (("train", train_set), ("test", test_set))}  # cache hits
    roles = liteeval_roles(first)
    g = {role: roles[role].gmacs() for role in roles}
    always = g["fine_cnn"] + g["fine_step"]
    fine_acc = [evaluate(train_always_fine(config, feats["train"], s, seed, work), feats["test"])["accuracy"]
                for seed in seeds]
    result = {"gmacs_by_graph": g, "test_videos": len(test_set), "train_videos": len(train_set), "seeds": list(seeds),
              "always_fine": {"accuracy": _mean(fine_acc), "accuracy_by_seed": fine_acc, "fine_rate": 1.0,
                              "gmacs_per_frame": always}, "gated": []}
    for gamma in gammas:
        scores = [evaluate(model.head, feats["test"]) for model in runs[gamma]]
        acc, rate = _mean([m["accuracy"] for m in scores]), _mean([m["fine_rate"] for m in scores])
        per_frame = g["coarse_cnn"] + g["coarse_step"] + rate * always
        delta = 100 * (acc - result["always_fine"]["accuracy"])
        result["gated"].append({"fine_fraction_target": gamma, "accuracy": acc, "fine_rate": rate,
                                "accuracy_by_seed": [m["accuracy"] for m in scores],
                                "fine_rate_by_seed": [m["fine_rate"] for m in scores],
                                "gmacs_per_frame": per_frame, "gmacs_ratio": per_frame / always,
                                "accuracy_delta_points": delta,
                                "target_met": per_frame / always <= 0.5 and delta >= -1.0})
    return result, first, stream


def _mean(values) -> float:
    return float(np.mean(values))


def stream_fps(bundle_dir: Path, stream: Path) -> dict:
    """Pipelined and sequential with the runtime's threads (edgevid.bench.stream.throughput, warm-up left out)."""
    t = throughput(bundle_dir, str(stream), backend="ort")
    return {"sequential": t["sequential"], "pipelined": t["pipelined"], "speedup": t["pipelined_over_sequential"]}


def graph_latency(model, bundle_dir: Path, reps: int) -> dict:
    roles = liteeval_roles(model)
    out = {}
    for role, rg in roles.items():
        feeds = {k: v.numpy() for k, v in rg.example_inputs.items()}
        inputs = tuple(rg.example_inputs.values())
        with open_session(bundle_dir / ("%s.onnx" % role), backend="ort") as session:
            ort_ms = time_calls(functools.partial(session.infer, feeds), reps)
        with torch.no_grad():
            torch_ms = time_calls(functools.partial(rg.module.eval(), *inputs), reps)
        out[role] = {"ort_ms": ort_ms, "torch_ms": torch_ms, "speedup": torch_ms["p50"] / ort_ms["p50"]}
    return out


def markdown(r: dict) -> str:
    f = r["gate"]["always_fine"]
    lines = [
        "# LiteEval on %s" % r["machine"]["description"], "",
        "Measured by `%s` on %s (torch %s, onnxruntime %s)." % (r["command"], r["date"], r["machine"]["torch"],
                                                              r["machine"]["onnxruntime"]), "",
        "## Gated vs always-fine (%d test videos)" % r["gate"]["test_videos"], "",
        "Target: at most half the always-fine GMACs at no more than 1 point lower accuracy. Accuracy and fine "
        "rate are means over training seeds %s (per seed in brackets)." % ", ".join(map(str, r["gate"]["seeds"])), "",
        "| model | γ | accuracy | fine-model rate | GMACs / frame | GMACs ratio | Δ accuracy | target |",
        "|---|---|---|---|---|---|---|---|",
        "| always fine | – | %.1f%% (%s) | 100%% | %.3f | 1 | – | – |" % (
            100 * f["accuracy"], _seeds(f["accuracy_by_seed"]), f["gmacs_per_frame"])]
    for g in r["gate"]["gated"]:
        lines.append("| gated LiteEval | %g | %.1f%% (%s) | %.1f%% | %.3f | %.3f | %+.1f | %s |" % (
            g["fine_fraction_target"], 100 * g["accuracy"], _seeds(g["accuracy_by_seed"]), 100 * g["fine_rate"],
            g["gmacs_per_frame"], g["gmacs_ratio"], g["accuracy_delta_points"],
            "met" if g["target_met"] else "not met"))
    lines += [
        "", "## Stream through ONNX Runtime (%d frames)" % r["stream"]["pipelined"]["predictions"], "",
        "| mode | FPS | latency p50 / p90 / p99 (ms) |", "|---|---|---|"]
    for mode in ("sequential", "pipelined"):
        m = r["stream"][mode]
        lines.append("| %s | %.1f | %.1f / %.1f / %.1f |" % (mode, m["fps"], m["latency_ms"]["p50"],
                                                          m["latency_ms"]["p90"], m["latency_ms"]["p99"]))
    lines += ["", "Pipelined / sequential: %.2f×." % r["stream"]["speedup"], "",
              "## Per-graph latency, batch 1 (p50 ms)", "", "| graph | GMACs | ONNX Runtime | PyTorch eager | speed-up |",
              "|---|---|---|---|---|"]
    for role, m in r["graphs"].items():
        lines.append("| %s | %.4f | %.3f | %.3f | %.2f× |" % (role, r["gate"]["gmacs_by_graph"][role], m["ort_ms"]["p50"],
                                                          m["torch_ms"]["p50"], m["speedup"]))
    return "\n".join(lines) + "\n"


def _seeds(values) -> str:
    return " / ".join("%.1f" % (100 * v) for v in values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="benchmarks/results/_scratch/liteeval", help="data and model cache")
    parser.add_argument("--out", default="benchmarks/results/cpu-2core", help="where liteeval.json/.md go")
    parser.add_argument("--test-per-class", type=int, default=20)
    parser.add_argument("--fine-fractions", type=float, nargs="+", default=[FULL.fine_fraction, 0.3, 0.35, 0.4],
                        help="γ values for gated heads; the first is exported and streamed (default: the demo's)")
    parser.add_argument("--epochs", type=int, help="head training epochs (default: the demo's)")
    parser.add_argument("--reps", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="training seeds (head init, Gumbel noise, batch order); the first also makes data and "
                             "backbones (default: 0 1 2)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test of the script)")
    args = parser.parse_args()
    s = QUICK if args.quick else FULL
    if args.quick:
        args.test_per_class, args.reps = 2, 5
        s = replace(s, batch_size=4)
    if args.epochs:
        s = replace(s, epochs=args.epochs)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(os.cpu_count() or 1)

    gate, model, stream = gate_vs_fine(work, s, args.test_per_class, args.seeds, args.fine_fractions)
    bundle_dir = work / "bundle"
    export_bundle(model, bundle_dir, labels=None, policy={"max_steps": s.frames}, overwrite=True)
    import onnxruntime

    result = {
        "command": "python " + " ".join(sys.argv), "date": time.strftime("%Y-%m-%d"),
        "machine": {"description": "%d-core %s CPU" % (os.cpu_count(), platform.machine()), "cpu": platform.processor(),
                    "torch": torch.__version__, "onnxruntime": onnxruntime.__version__},
        "settings": {"demo": vars(s) if hasattr(s, "__dict__") else str(s), "test_per_class": args.test_per_class},
        "gate": gate, "stream": stream_fps(bundle_dir, stream), "graphs": graph_latency(model, bundle_dir, args.reps),
    }
    write_results(Path(args.out), "liteeval", result, markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
