"""PreRNN on this CPU: what a recurrent step costs, and SIH vs gate-dependent PreRNN vs a traditional RNN.

    python benchmarks/prernn_bench.py [--work DIR] [--out benchmarks/results/cpu-2core] [--quick]

1. Per-call latency, batch 1, of the ``backbone`` and ``step`` graphs: ONNX Runtime vs PyTorch eager on the
   same inputs (p50/p90), for the demo model (small VGG @112, fc6 → SIH-LSTM, H = 32), a VGG16 fc6 SIH-LSTM
   step (H = 4096: 4·H² = 67 M recurrent MACs; the 15.5-GMAC VGG16 backbone is not timed) and ResNet-50
   layer4 SIH-LSTM @224 (both graphs). Random weights: latency does not depend on them.
2. Accuracy and convergence on the synthetic sequences: one small VGG pre-trained per frame (the demo's
   :func:`train_frame_classifier`), then converted / extended three ways with the same epochs and seed — SIH
   (eqs. 10–12), gate-dependent PreRNN (eqs. 7–9) and a traditional LSTM on top of fc7 (eqs. 1–3) — and
   validation accuracy (last step of each clip) per epoch.
3. Recurrent parameters added per form (:mod:`edgevid.models.prernn.params`, VGG16 fc6/fc7) and counted on
   the three trained models.

Writes ``prernn.json`` and ``prernn.md`` into ``--out``. Every number is measured in this run.
"""
from __future__ import annotations

import argparse
import functools
import os
import platform
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from common import time_calls, write_results  # noqa: E402

from edgevid.backends import open_session  # noqa: E402
from edgevid.data.folder import VideoFolder  # noqa: E402
from edgevid.demo import make_data  # noqa: E402
from edgevid.demo.prernn import FULL, QUICK  # noqa: E402
from edgevid.export.onnx import export_onnx  # noqa: E402
from edgevid.export.prernn import prernn_gmacs, prernn_roles  # noqa: E402
from edgevid.models.prernn import PreRNNConfig, build_cnn, create_prernn  # noqa: E402
from edgevid.models.prernn.params import parameter_table  # noqa: E402
from edgevid.train.frames import train_frame_classifier  # noqa: E402
from edgevid.train.prernn import train_prernn  # noqa: E402

LATENCY_MODELS = [  # name, arch, layer, image size, roles to time
    ("demo small_vgg fc6 SIH-LSTM @112", "small_vgg", "fc6", 112, ("backbone", "step")),
    ("VGG16 fc6 SIH-LSTM (H=4096)", "vgg16", "fc6", 224, ("step",)),
    ("ResNet-50 layer4 SIH-LSTM @224 (H=2048)", "resnet50", "layer4", 224, ("backbone", "step")),
]
FORMS = ("sih", "prernn", "traditional")


def graph_latency(work: Path, reps: int, big_reps: int, threads: int) -> list:
    rows = []
    for name, arch, layer, size, roles in LATENCY_MODELS:
        torch.manual_seed(0)
        model = create_prernn(PreRNNConfig(num_classes=10, arch=arch, layer=layer, cell="lstm", form="sih",
                                           image_size=size)).eval()
        gmacs = prernn_gmacs(model, size)
        graphs = prernn_roles(model, size)
        row = {"model": name, "hidden": model.hidden, "graphs": {}}
        for role in roles:
            rg = graphs[role]
            path = work / ("%s-%s.onnx" % (arch, role))
            export_onnx(rg.module, rg.example_inputs, rg.output_names, path, simplify=arch == "small_vgg", role=role)
            feeds = {k: v.numpy() for k, v in rg.example_inputs.items()}
            n = reps if gmacs[role] < 0.5 else big_reps
            with open_session(path, backend="ort", threads=threads) as session:
                ort_ms = time_calls(functools.partial(session.infer, feeds), n)
            with torch.no_grad():
                torch_ms = time_calls(functools.partial(rg.module.eval(), *rg.example_inputs.values()), n)
            row["graphs"][role] = {"gmacs": gmacs[role], "reps": n, "ort_ms": ort_ms, "torch_ms": torch_ms,
                                   "speedup": torch_ms["p50"] / ort_ms["p50"]}
            path.unlink()
        rows.append(row)
        del model, graphs
    return rows


def recurrent_parameters(model) -> int:
    """Parameters that are new for the recurrence: W_h* (+ gate bias), and for the traditional form the new
    W_ih drive, for the gate-dependent one the G − 1 extra copies of W_xy."""
    rec = sum(p.numel() for p in model.recurrence.parameters())
    form, copies, drive = model.info["form"], getattr(model.drive, "copies", 1), model.drive.weight.numel()
    if form == "traditional":
        return rec + drive
    if form == "prernn":
        return rec + drive * (copies - 1) // copies
    return rec


def forms(work: Path, s, seed: int) -> dict:
    data = make_data(work / "data", s, seed)
    train_set = VideoFolder(data["root"] / "train", num_frames=s.frames)
    val_set = VideoFolder(data["root"] / "val", num_frames=s.frames)
    classes = list(train_set.classes)
    start = time.perf_counter()
    frames = train_frame_classifier(build_cnn(s.arch, len(classes)), train_set, val_set, image_size=s.image_size,
                                    weights_out=work / "cnn.pth", epochs=s.cnn_epochs, lr=s.cnn_lr, every=s.cnn_every,
                                    seed=seed)
    out = {"classes": len(classes), "cnn": {"frames": frames.frames, "epochs": s.cnn_epochs, "val_frame_accuracy": frames.val_accuracy,
                   "seconds": round(time.perf_counter() - start, 1)}, "forms": {}}
    for form in FORMS:
        config = PreRNNConfig(num_classes=len(classes), labels=classes, arch=s.arch, layer=s.layer, cell=s.cell,
                              form=form, image_size=s.image_size)
        start = time.perf_counter()
        result = train_prernn(config, train_set, val_set, out=work / ("%s.pt" % form), epochs=s.epochs,
                              batch_size=s.batch_size, lr=s.lr, weights=frames.weights, seed=seed,
                              cache_dir=work / "cache")
        curve = [h["val"]["accuracy"] for h in result.history]
        best = max(curve)
        out["forms"][form] = {
            "val_accuracy_per_epoch": [round(a, 4) for a in curve], "best_val_accuracy": best,
            "final_val_accuracy": curve[-1], "first_epoch_at_90pct_of_best": next(
                i + 1 for i, a in enumerate(curve) if a >= 0.9 * best),
            "recurrent_parameters": recurrent_parameters(result.model), "hidden": result.model.hidden,
            "seconds": round(time.perf_counter() - start, 1)}
    return out


def markdown(r: dict) -> str:
    lines = ["# PreRNN on %s" % r["machine"], "", "`%s` — %s. Every number measured in that run." % (
        r["command"], r["date"]), "", "## Per-call latency, batch 1 (ms, %d threads)" % r["threads"], "",
        "| model | graph | GMACs | ORT p50 | ORT p90 | torch p50 | torch p90 | torch/ORT |", "|---|---|---|---|---|---|---|---|"]
    for row in r["latency"]:
        for role, g in row["graphs"].items():
            lines.append("| %s | %s | %.4g | %.3f | %.3f | %.3f | %.3f | %.2fx |" % (
                row["model"], role, g["gmacs"], g["ort_ms"]["p50"], g["ort_ms"]["p90"], g["torch_ms"]["p50"],
                g["torch_ms"]["p90"], g["speedup"]))
    f = r["forms"]
    lines += ["", "## SIH vs PreRNN vs traditional on the synthetic sequences", "",
              "One small VGG @%d pre-trained per frame (%d frames, %d epochs, val frame accuracy %.3f); then %d epochs "
              "of sequence training per form, same seed. Validation accuracy = last step of each clip (%d classes)." % (
                  r["settings"]["image_size"], f["cnn"]["frames"], f["cnn"]["epochs"], f["cnn"]["val_frame_accuracy"],
                  r["settings"]["epochs"], r["classes"]), "",
              "| form | best val acc | final val acc | epoch reaching 90% of best | recurrent params | train s |",
              "|---|---|---|---|---|---|"]
    for form, x in f["forms"].items():
        lines.append("| %s | %.3f | %.3f | %d | %d | %.1f |" % (form, x["best_val_accuracy"], x["final_val_accuracy"],
                                                                x["first_epoch_at_90pct_of_best"],
                                                                x["recurrent_parameters"], x["seconds"]))
    lines += ["", "Val accuracy per epoch:", ""]
    for form, x in f["forms"].items():
        lines.append("- %s: %s" % (form, ", ".join("%.2f" % a for a in x["val_accuracy_per_epoch"])))
    lines += ["", "## Recurrent parameters added (VGG16, no biases; docs/models.md §4.9)", "",
              "| layer | cell | D | H | traditional | PreRNN | SIH | SIH vs PreRNN | SIH vs traditional |",
              "|---|---|---|---|---|---|---|---|---|"]
    for p in r["parameters"]:
        lines.append("| %s | %s | %d | %d | %d | %d | %d | %.1f%% | %.1f%% |" % (
            p["layer"], p["cell"], p["D"], p["H"], p["traditional"], p["prernn"], p["sih"], 100 * p["sih_vs_prernn"],
            100 * p["sih_vs_traditional"]))
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", help="scratch folder (default: a temporary one)")
    parser.add_argument("--out", default="benchmarks/results/cpu-2core", help="where prernn.json/.md go")
    parser.add_argument("--quick", action="store_true", help="smoke test: tiny data, few reps (numbers meaningless)")
    parser.add_argument("--threads", type=int, default=1, help="torch and ORT intra-op threads (default: 1, as the "
                        "pipelined runtime runs each session; torch with 2 threads on 2 shared cores measured ~100x slower)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    s = replace(QUICK, epochs=3) if args.quick else replace(FULL, epochs=30)
    reps, big_reps = (5, 2) if args.quick else (200, 20)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        latency = graph_latency(work, reps, big_reps, args.threads)
        comparison = forms(work, s, args.seed)
    result = {"machine": "cpu-2core (%s, %s, %d CPUs visible)" % (platform.processor() or platform.machine(),
                                                                   platform.python_version(), os.cpu_count() or 0),
              "command": "python benchmarks/prernn_bench.py" + (" --quick" if args.quick else ""),
              "date": time.strftime("%Y-%m-%d"), "threads": args.threads, "torch": torch.__version__,
              "settings": {k: getattr(s, k) for k in ("image_size", "frames", "train_per_class", "val_per_class",
                                                      "epochs", "cnn_epochs", "lr", "batch_size")},
              "classes": comparison["classes"], "latency": latency, "forms": comparison, "parameters": parameter_table(),
              "seconds": round(time.perf_counter() - started, 1)}
    write_results(Path(args.out), "prernn", result, markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
