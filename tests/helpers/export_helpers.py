"""Small LiteEval models, features and frames for the export tests (kept tiny: 2 shared CPU cores)."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from edgevid.models.liteeval import LiteEval, LiteEvalConfig

# docs/models.md: the small head of the brief (F = 512 from resnet18; the ResNet itself is never built here)
SMALL = dict(num_classes=5, labels=["a", "b", "c", "d", "e"], fine_arch="resnet18",
             coarse_proj=16, coarse_hidden=16, fine_hidden=32)
STEPS = 320


class TinyCNN(nn.Module):
    """Stands in for a backbone in fast tests: frames [N,3,S,S] → [N,out] (conv + BN + pool + linear)."""

    def __init__(self, out: int):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 5, stride=4)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, out)

    def forward(self, x):
        return torch.relu(self.fc(torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3))))


def randomize_bn(module: nn.Module, seed: int = 0) -> None:
    """Give every BatchNorm non-trivial running statistics and affine parameters (as after training)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.running_mean.copy_(0.05 * torch.randn(n, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(n, generator=gen))
                m.weight.copy_(0.5 + torch.rand(n, generator=gen))
                m.bias.copy_(0.1 * torch.randn(n, generator=gen))


def random_features(steps: int, coarse: int = 1280, fine: int = 512, seed: int = 0):
    """Features like a video's pooled ReLU activations: scenes of 5-30 steps, each a sparse prototype plus noise."""
    rng = np.random.default_rng(seed)
    out = []
    for dim in (coarse, fine):
        feats, t = [], 0
        while t < steps:
            length = int(rng.integers(5, 31))
            proto = np.maximum(rng.normal(0, 1, dim), 0) * (rng.random(dim) < 0.3)
            feats.append(np.maximum(proto + rng.normal(0, 0.3, (length, dim)), 0))
            t += length
        out.append(np.concatenate(feats)[:steps].astype(np.float32))
    return out[0], out[1]


def make_gate_switch(head, feat_c, feat_f, gain: float = 40.0, iters: int = 5) -> float:
    """Make the gate depend strongly on the coarse feature v_c, so that both branches occur.

    A freshly initialised gate barely reacts to its input and ends up always on one side; a trained
    one switches with the content. The v_c columns of the gate are scaled by ``gain``; the bias puts
    the decision threshold in the widest gap between the middle half of the stream's logit
    differences (not at their median, which would manufacture exact ties on a cycled stream), a few
    times over, since decisions change the state the gate reads. Returns the fine rate on the stream.
    """
    p_c = head.config.coarse_proj
    with torch.no_grad():
        head.gate.weight[:, :p_c].mul_(gain)
        fc, ff = torch.from_numpy(feat_c[None]), torch.from_numpy(feat_f[None])
        was = head.training
        head.eval()
        for _ in range(iters):
            b = head(fc, ff)["gate_logits"][0].double()
            d = np.sort((b[:, 0] - b[:, 1]).numpy())
            lo, hi = len(d) // 4, max(len(d) // 4 + 1, (3 * len(d)) // 4)
            k = lo + int(np.argmax(np.diff(d[lo:hi + 1])))
            head.gate.bias[0] -= float(0.5 * (d[k] + d[k + 1]))
        rate = float(head(fc, ff)["fine"].mean())
        head.train(was)
    return rate


def small_model(seed: int = 0, **overrides) -> LiteEval:
    torch.manual_seed(seed)
    cfg = LiteEvalConfig(**dict(SMALL, **overrides))
    model = LiteEval(cfg, TinyCNN(cfg.coarse_feat), TinyCNN(cfg.fine_feat))
    randomize_bn(model, seed)
    fc, ff = random_features(STEPS, cfg.coarse_feat, cfg.fine_feat, seed=seed + 100)
    make_gate_switch(model.head, fc, ff)
    return model.eval()


def bgr_frames(n: int, h: int = 180, w: int = 240, seed: int = 0):
    """Synthetic decoded frames (BGR uint8) with smooth structure, a moving square and noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    frames = []
    for i in range(n):
        base = np.stack([(xx * (1 + c) + yy * (2 - c) + 20 * i) % 256 for c in range(3)], axis=2)
        y0, x0 = (10 + 7 * i) % (h - 40), (15 + 11 * i) % (w - 40)
        base[y0:y0 + 40, x0:x0 + 40] = rng.uniform(0, 255, 3)
        base += rng.normal(0, 8, base.shape)
        frames.append(np.clip(base, 0, 255).astype(np.uint8))
    return frames


def trained_like_liteeval(cfg: LiteEvalConfig, frames, steps: int = 300):
    """A LiteEval with torchvision backbones made to behave like a trained one on ``frames`` (BGR).

    Fresh backbones give almost-zero features in eval mode, so their BN statistics are set from the
    frames; the head gets non-trivial BN statistics and a gate that switches on the cycled frames.
    Returns (model in eval mode, preprocessed 224 frames, preprocessed 112 frames).
    """
    from edgevid.models.liteeval import create_liteeval
    from edgevid.preprocess import Preprocessor
    from edgevid.spec import PreprocessSpec

    torch.manual_seed(0)
    model = create_liteeval(cfg)
    randomize_bn(model.head)
    pre = Preprocessor(PreprocessSpec(resize_short=256, crop=224, sizes=(224, 112)))
    f224 = torch.from_numpy(np.concatenate([pre(f)[224].copy() for f in frames]))
    f112 = torch.from_numpy(np.concatenate([pre(f)[112].copy() for f in frames]))
    with torch.no_grad():
        for cnn, x in ((model.coarse_cnn, f112), (model.fine_cnn, f224)):
            for m in cnn.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.reset_running_stats()
                    m.momentum = None  # cumulative average: the statistics of exactly these frames
            cnn.train()(x)
        model.eval()
        idx = np.arange(steps) % len(frames)
        make_gate_switch(model.head, model.coarse_cnn(f112).numpy()[idx], model.fine_cnn(f224).numpy()[idx])
    return model, f224, f112
