"""LiteEval (docs/models.md §2; dissertation Ch. 4): a coarse LSTM on cheap MobileNetV2 features every step,
a gate that decides whether the expensive fine ResNet feature is computed, a fine LSTM, and a
classifier on the fine state at every step.

::

    frame ─► coarse CNN (112) ─► l2norm ─► proj_c ─► v_c ─► cLSTM ─► h_c, c_c
                                                    │
                         [v_c, h_f(t-1), c_f(t-1)] ─► gate ─► b_t ── argmax ──┐
                                                                              ▼
    frame ─► fine CNN (224) ─► l2norm ─► proj_f ─► v_f ─► fLSTM([v_f, v_c]) ─► h_f, c_f   (B_t = 1)
                                          sync: h_f = [h_c[:Dc], h_f(t-1)[Dc:]]          (B_t = 0)
                                                                              ▼
                                                              classifier(h_f) ─► logits_t

The head (:class:`LiteEvalHead`) holds everything but the CNNs, so it trains on cached per-frame
features, as the paper does. Gate channel 0 = compute fine features, 1 = skip and sync.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .backbones import COARSE_ARCHS, FINE_ARCHS

State = Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]  # h_c, c_c, h_f, c_f


@dataclass
class LiteEvalConfig:
    """Sizes of LiteEval. Defaults are the FCVID setting of the paper with ResNet-101."""

    num_classes: int
    labels: List[str] = field(default_factory=list)
    coarse_arch: str = "mobilenet_v2"
    fine_arch: str = "resnet101"
    coarse_proj: int = 512          # P_c
    coarse_hidden: int = 512        # D^c
    fine_hidden: int = 2048         # D^f
    fine_proj: Optional[int] = None  # P_f; None = F, the fine feature size (as the reference does)
    gumbel_scale: float = 0.5       # reference implementation scales the Gumbel noise by 0.5

    def __post_init__(self):
        if self.num_classes < 2:
            raise ConfigError("LiteEval needs at least 2 classes", "got %d" % self.num_classes, None)
        if self.coarse_hidden > self.fine_hidden:
            raise ConfigError("coarse LSTM size %d is larger than fine LSTM size %d" % (
                self.coarse_hidden, self.fine_hidden), "the sync copies h_c into the first D^c units of h_f",
                "choose coarse_hidden <= fine_hidden")
        if self.coarse_arch not in COARSE_ARCHS or self.fine_arch not in FINE_ARCHS:
            raise ConfigError("unknown backbone %s/%s" % (self.coarse_arch, self.fine_arch), None,
                              "coarse: %s; fine: %s" % (", ".join(COARSE_ARCHS), ", ".join(FINE_ARCHS)))
        if self.labels and len(self.labels) != self.num_classes:
            raise ConfigError("%d labels for %d classes" % (len(self.labels), self.num_classes), None,
                              "give one label per class")

    @property
    def coarse_feat(self) -> int:
        return COARSE_ARCHS[self.coarse_arch]

    @property
    def fine_feat(self) -> int:
        return FINE_ARCHS[self.fine_arch]

    @property
    def fine_proj_dim(self) -> int:
        return self.fine_proj or self.fine_feat

    def to_dict(self) -> Dict:
        return asdict(self)


def _projection(inp: int, out: int) -> nn.Sequential:
    """BN → Linear → BN → ReLU (reference implementation behaviour, docs/models.md §2.1)."""
    return nn.Sequential(nn.BatchNorm1d(inp), nn.Linear(inp, out), nn.BatchNorm1d(out), nn.ReLU())


def l2norm(x: torch.Tensor) -> torch.Tensor:
    """x / max(‖x‖₂, 1e-12), row-wise."""
    return F.normalize(x, p=2.0, dim=1, eps=1e-12)


class LiteEvalHead(nn.Module):
    """Projections, both LSTMs, the gate and the classifier: one step or a whole sequence."""

    def __init__(self, config: LiteEvalConfig):
        super().__init__()
        self.config = c = config
        self.proj_c = _projection(c.coarse_feat, c.coarse_proj)
        self.proj_f = _projection(c.fine_feat, c.fine_proj_dim)
        self.lstm_c = nn.LSTMCell(c.coarse_proj, c.coarse_hidden)
        self.lstm_f = nn.LSTMCell(c.fine_proj_dim + c.coarse_proj, c.fine_hidden)  # input [v_f, v_c]
        self.gate = nn.Linear(c.coarse_proj + 2 * c.fine_hidden, 2)
        self.classifier = nn.Linear(c.fine_hidden, c.num_classes)

    # one step, split as the deployed graphs are (docs/models.md §2.8) --------------------------------
    def init_state(self, n: int, device=None) -> State:
        c = self.config
        z = lambda d: torch.zeros(n, d, device=device)  # noqa: E731
        return z(c.coarse_hidden), z(c.coarse_hidden), z(c.fine_hidden), z(c.fine_hidden)

    def coarse_step(self, feat_c: torch.Tensor, state: State):
        """Coarse path: returns v_c, new (h_c, c_c), gate logits, and the synced fine state candidate."""
        h_c, c_c, h_f, c_f = state
        v_c = self.proj_c(l2norm(feat_c))
        h_c, c_c = self.lstm_c(v_c, (h_c, c_c))
        gate_logits = self.gate(torch.cat([v_c, h_f, c_f], dim=1))
        d = self.config.coarse_hidden
        h_sync = torch.cat([h_c[:, :d], h_f[:, d:]], dim=1)
        c_sync = torch.cat([c_c[:, :d], c_f[:, d:]], dim=1)
        return v_c, (h_c, c_c), gate_logits, (h_sync, c_sync)

    def fine_step(self, feat_f: torch.Tensor, v_c: torch.Tensor, h_f: torch.Tensor, c_f: torch.Tensor):
        """Fine path: new (h_f, c_f) from the fine feature, the coarse projection and the previous fine state."""
        v_f = self.proj_f(l2norm(feat_f))
        return self.lstm_f(torch.cat([v_f, v_c], dim=1), (h_f, c_f))

    # whole sequences (training, reference evaluation) --------------------------------------------
    def forward(self, feat_c: torch.Tensor, feat_f: torch.Tensor, mask: Optional[torch.Tensor] = None,
                tau: float = 1.0, gates: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """Run T steps on features [N,T,·]. Returns per-step ``logits`` [N,T,C], ``fine`` (B_t) [N,T],
        ``gate_logits`` [N,T,2].

        Training mode samples the gate with straight-through Gumbel-softmax at temperature ``tau``;
        eval mode takes the argmax (ties → fine). ``gates`` [N,T] forces B_t (teacher forcing, for
        parity tests). ``mask`` [N,T] (1 = real step) freezes every state on padded steps.
        """
        n, steps = feat_c.shape[:2]
        state = self.init_state(n, feat_c.device)
        logits, fine, gate_all = [], [], []
        for t in range(steps):
            v_c, (h_c, c_c), b, (h_sync, c_sync) = self.coarse_step(feat_c[:, t], state)
            g = self._gate_weights(b, tau) if gates is None else torch.stack([gates[:, t], 1 - gates[:, t]], 1).float()
            h_new, c_new = self.fine_step(feat_f[:, t], v_c, state[2], state[3])
            g0, g1 = g[:, :1], g[:, 1:]
            new = (h_c, c_c, g0 * h_new + g1 * h_sync, g0 * c_new + g1 * c_sync)
            if mask is not None:
                m = mask[:, t:t + 1].to(feat_c.dtype)
                new = tuple(m * a + (1 - m) * b for a, b in zip(new, state))
            state = new
            logits.append(self.classifier(state[2]))
            fine.append(g[:, 0])
            gate_all.append(b)
        return {"logits": torch.stack(logits, 1), "fine": torch.stack(fine, 1), "gate_logits": torch.stack(gate_all, 1)}

    def _gate_weights(self, b: torch.Tensor, tau: float) -> torch.Tensor:
        """[N,2] gate weights: hard straight-through Gumbel sample in training, hard argmax in eval."""
        if not self.training:
            return F.one_hot((b[:, 1] > b[:, 0]).long(), 2).to(b.dtype)  # ties -> channel 0 (fine)
        u = torch.rand_like(b).clamp_(1e-10, 1.0 - 1e-7)
        noisy = (F.log_softmax(b, dim=1) - self.config.gumbel_scale * torch.log(-torch.log(u))) / tau
        soft = F.softmax(noisy, dim=1)
        hard = F.one_hot(soft.argmax(dim=1), 2).to(b.dtype)
        return (hard - soft).detach() + soft


def gumbel_temperature(step: int, rate: float = 1e-4, floor: float = 0.5) -> float:
    """τ = max(floor, exp(−rate · step)) over a monotone optimiser-step count (docs/models.md §2.4)."""
    return max(floor, math.exp(-rate * step))


class LiteEval(nn.Module):
    """The full model: coarse CNN, fine CNN and the head. ``forward`` takes frames [N,T,3,·,·] at both sizes."""

    def __init__(self, config: LiteEvalConfig, coarse_cnn: nn.Module, fine_cnn: nn.Module):
        super().__init__()
        self.config = config
        self.coarse_cnn = coarse_cnn
        self.fine_cnn = fine_cnn
        self.head = LiteEvalHead(config)

    def features(self, frames_c: torch.Tensor, frames_f: torch.Tensor):
        """Per-frame features of clips [N,T,3,112,112] and [N,T,3,224,224] → [N,T,1280], [N,T,F]."""
        n, t = frames_c.shape[:2]
        feat_c = self.coarse_cnn(frames_c.flatten(0, 1)).view(n, t, -1)
        feat_f = self.fine_cnn(frames_f.flatten(0, 1)).view(n, t, -1)
        return feat_c, feat_f

    def forward(self, frames_c, frames_f, mask=None, tau: float = 1.0):
        return self.head(*self.features(frames_c, frames_f), mask=mask, tau=tau)


def create_liteeval(config: LiteEvalConfig, *, coarse_weights=None, fine_weights=None) -> LiteEval:
    """Build LiteEval with torchvision backbones (optionally from local torchvision state dicts)."""
    from .backbones import create_coarse_cnn, create_fine_cnn

    return LiteEval(config, create_coarse_cnn(config.coarse_arch, weights=coarse_weights),
                    create_fine_cnn(config.fine_arch, weights=fine_weights))
