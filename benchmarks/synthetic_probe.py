"""Can LiteEval's backbones tell the synthetic classes apart? A learnability probe (CPU, a few minutes).

The LiteEval demo trains on per-frame features of randomly initialised backbones (no pretrained
weights exist on the target machines): MobileNetV2 on the 112 px coarse frame (global-average-pooled
1280-d ``features``) and ResNet-18 on the 224 px fine frame (512-d penultimate), both fed by
``edgevid.preprocess.Preprocessor`` exactly as at run time. This script generates a small
synthetic set, extracts both feature sets with BatchNorm statistics as initialised ("init": running
mean 0, variance 1) and re-estimated on separate calibration clips ("fit": a no-grad forward pass in
train mode, then eval), trains small probes with stratified 5-fold cross-validation and prints
held-out accuracy per class for coarse-only and fine-only features.

    python benchmarks/synthetic_probe.py                  # 30 clips/class × 8 frames, linear probe, ≈ 4 min
    python benchmarks/synthetic_probe.py --probes linear lstm --bn fit   # also the LSTM probe

Probes: "linear" is logistic regression on the per-feature mean, trend and curvature over the clip
(a linear read-out of the concatenated frame features); "lstm" is a 32-unit LSTM over frames.
The wanted result: fine features high on every class; coarse features near chance inside the
fine-texture classes (at the 2 px period) and high on the motion classes.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgevid.data import synthetic  # noqa: E402
from edgevid.preprocess import Preprocessor  # noqa: E402
from edgevid.spec import PreprocessSpec  # noqa: E402


def backbones(seed: int):
    """Random-init MobileNetV2 (coarse, GAP of ``features``) and ResNet-18 (fine, penultimate)."""
    import torch
    import torchvision

    torch.manual_seed(seed)
    mobilenet = torchvision.models.mobilenet_v2(weights=None)
    coarse = torch.nn.Sequential(mobilenet.features, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    fine = torchvision.models.resnet18(weights=None)
    fine.fc = torch.nn.Identity()
    return coarse.eval(), fine.eval()


def clip_inputs(pre: Preprocessor, frames: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Preprocess every frame: (224 px batch, 112 px batch), float32 NCHW copies."""
    fine, coarse = [], []
    for f in frames:
        out = pre(f)
        fine.append(out[224][0].copy())
        coarse.append(out[112][0].copy())
    return np.stack(fine), np.stack(coarse)


def refit_batchnorm(model, batches) -> None:
    """Replace BN running statistics by plain averages over ``batches`` (no gradients), then eval."""
    import torch

    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over all batches seen
    model.train()
    with torch.no_grad():
        for b in batches:
            model(torch.from_numpy(b))
    model.eval()


def make_clips(args, seeds_offset: int, per_class: int):
    """(class index, frames) for per_class clips of every class, seeds disjoint per offset."""
    out = []
    for ci, c in enumerate(synthetic.CLASSES):
        for i in range(per_class):
            seed = seeds_offset + i
            out.append((ci, c, seed, synthetic.make_video(c, seed, args.frames, 256)))
    return out


def extract(args) -> Dict[str, np.ndarray]:
    import torch

    pre = Preprocessor(PreprocessSpec(sizes=(224, 112)))
    coarse, fine = backbones(args.model_seed)
    data = make_clips(args, 0, args.videos_per_class)
    labels = np.array([d[0] for d in data])
    period = np.array([synthetic.video_params(d[1], d[2], args.frames).get("period", 0.0) for d in data])
    feats: Dict[str, np.ndarray] = {"labels": labels, "period": period}
    inputs = [clip_inputs(pre, d[3]) for d in data]
    for mode in args.bn:
        t0 = time.perf_counter()
        if mode == "fit":
            calib = [clip_inputs(pre, d[3]) for d in make_clips(args, 10_000, args.calib_per_class)]
            refit_batchnorm(fine, [c[0] for c in calib])
            refit_batchnorm(coarse, [c[1] for c in calib])
        with torch.no_grad():
            feats["fine_" + mode] = np.stack([fine(torch.from_numpy(x[0])).numpy() for x in inputs])
            feats["coarse_" + mode] = np.stack([coarse(torch.from_numpy(x[1])).numpy() for x in inputs])
        print("features (bn=%s): %.0f s" % (mode, time.perf_counter() - t0), flush=True)
    return feats


# ---------------------------------------------------------------- probes

def standardise(train: np.ndarray, test: np.ndarray):
    # LiteEval L2-normalises features; then z-score per dimension with training statistics
    def l2(x):
        return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
    train, test = l2(train), l2(test)
    mu = train.reshape(-1, train.shape[-1]).mean(0)
    sd = train.reshape(-1, train.shape[-1]).std(0) + 1e-6
    return (train - mu) / sd, (test - mu) / sd


def temporal_moments(x: np.ndarray) -> np.ndarray:
    """[N, T, D] -> [N, 3·D]: per-feature mean, linear trend and curvature over the clip.

    Projections on the first three Legendre polynomials: a linear read-out of the frame sequence
    that sees "what is there", "what grows or shrinks" and "what goes and comes back" with 3·D
    weights instead of T·D (the probe has ~20 clips per class to learn from).
    """
    t = x.shape[1]
    s = np.linspace(-1.0, 1.0, t)
    basis = np.stack([np.ones(t), s, 1.5 * s ** 2 - 0.5])
    basis /= np.maximum(np.linalg.norm(basis, axis=1, keepdims=True), 1e-12)
    return np.einsum("kt,ntd->nkd", basis, x).reshape(len(x), -1).astype(np.float32)


def train_probe(kind: str, x: np.ndarray, y: np.ndarray, num_classes: int, seed: int):
    """Fit a probe on [N, T, D] features; returns predict([M, T, D]) -> labels."""
    import torch

    torch.manual_seed(seed)
    d = x.shape[2]
    if kind == "linear":
        # logistic regression on temporal moments of the frame features
        model = torch.nn.Linear(3 * d, num_classes)
        forward = lambda xb: model(xb)  # noqa: E731
        prep = temporal_moments
        wd, epochs, lr = 1e-2, 300, 1e-3
    else:
        # small LSTM over frames, prediction from the last step (LiteEval predicts at step T)
        # heavy input dropout: with ~20 clips per class an LSTM otherwise memorises the training set
        proj = torch.nn.Sequential(torch.nn.Dropout(0.7), torch.nn.Linear(d, 32), torch.nn.ReLU())
        lstm = torch.nn.LSTM(32, 32, batch_first=True)
        head = torch.nn.Linear(32, num_classes)
        model = torch.nn.ModuleList([proj, lstm, head])

        def forward(xb):
            h, _ = lstm(proj(xb))
            return head(h[:, -1])
        prep = lambda a: a.astype(np.float32)  # noqa: E731
        wd, epochs, lr = 1e-2, 600, 3e-3
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
    xt, yt = torch.from_numpy(prep(x)), torch.from_numpy(y).long()
    model.train()
    for _ in range(epochs):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(forward(xt), yt).backward()
        opt.step()
    model.eval()

    def predict(xe):
        with torch.no_grad():
            return forward(torch.from_numpy(prep(xe))).argmax(1).numpy()
    return predict


def cross_validate(kind: str, feats: np.ndarray, labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Held-out prediction for every clip, from stratified k folds."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(labels), int)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        fold[rng.permutation(idx)] = np.arange(len(idx)) % folds
    pred = np.empty(len(labels), int)
    for k in range(folds):
        tr, te = fold != k, fold == k
        xtr, xte = standardise(feats[tr], feats[te])
        pred[te] = train_probe(kind, xtr, labels[tr], int(labels.max()) + 1, seed + k)(xte)
    return pred


def report(results: Dict[str, np.ndarray], labels: np.ndarray, period: np.ndarray) -> Dict[str, object]:
    names = list(results)
    print("\nheld-out accuracy per class (%d clips each)" % np.sum(labels == 0))
    print("%-12s %-7s " % ("class", "needs") + " ".join("%14s" % n for n in names))
    table = {}
    for c in synthetic.MOTION_CLASSES + synthetic.FINE_CLASSES:
        ci = synthetic.CLASSES.index(c)
        m = labels == ci
        accs = [float(np.mean(results[n][m] == ci)) for n in names]
        table[c] = dict(zip(names, accs))
        need = "motion" if c in synthetic.MOTION_CLASSES else "detail"
        print("%-12s %-7s " % (c, need) + " ".join("%14.2f" % a for a in accs))
    for group, members in (("motion", synthetic.MOTION_CLASSES), ("detail", synthetic.FINE_CLASSES)):
        m = np.isin(labels, [synthetic.CLASSES.index(c) for c in members])
        print("%-20s " % ("mean " + group) + " ".join("%14.2f" % np.mean(results[n][m] == labels[m]) for n in names))
    fine_idx = np.isin(labels, [synthetic.CLASSES.index(c) for c in synthetic.FINE_CLASSES])
    for p in sorted(set(period[fine_idx])):
        m = fine_idx & (period == p)
        print("%-20s " % ("detail period %g px" % p) + " ".join(
            "%14.2f" % np.mean(results[n][m] == labels[m]) for n in names) + "   (n=%d)" % m.sum())
    print("%-20s " % "all" + " ".join("%14.2f" % np.mean(results[n] == labels) for n in names))
    return table


def main(argv: List[str] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--videos-per-class", type=int, default=30)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--calib-per-class", type=int, default=3, help="clips per class for BN re-estimation")
    ap.add_argument("--bn", nargs="+", default=["init", "fit"], choices=["init", "fit"])
    ap.add_argument("--probes", nargs="+", default=["linear"], choices=["linear", "lstm"])
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--model-seed", type=int, default=0)
    ap.add_argument("--cache", type=Path, help="npz file to store features in / reuse them from")
    ap.add_argument("--json", type=Path, help="also write the per-class table as JSON")
    args = ap.parse_args(argv)

    import cv2
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    t0 = time.perf_counter()
    if args.cache and args.cache.exists():
        feats = dict(np.load(args.cache))
    else:
        feats = extract(args)
        if args.cache:
            args.cache.parent.mkdir(parents=True, exist_ok=True)
            np.savez(args.cache, **feats)
    labels, period = feats["labels"], feats["period"]
    results = {}
    for mode in args.bn:
        for probe in args.probes:
            for res in ("coarse", "fine"):
                key = "%s_%s" % (res, mode)
                if key in feats:
                    results["%s/%s/%s" % (res, mode, probe)] = cross_validate(probe, feats[key], labels, args.folds, 0)
    table = report(results, labels, period)
    print("\ntotal %.0f s" % (time.perf_counter() - t0))
    if args.json:
        args.json.write_text(json.dumps(table, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
