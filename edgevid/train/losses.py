"""Training objectives.

LiteEval (docs/models.md §2.3, dissertation Eq. 4.5)::

    L = CE(y, p_T) + λ · mean_over_videos( (mean_t B_t − γ)² )

with the prediction taken at each video's last real step, B_t the (straight-through) fine-gate
indicator, γ the target fraction of fine steps (``fine_fraction_target``) and padded steps excluded
from both the step mean and the prediction.
"""
from __future__ import annotations

from typing import Dict, Mapping, Optional, Tuple

import torch
import torch.nn.functional as F

from ..errors import ConfigError


def last_step_index(mask: torch.Tensor) -> torch.Tensor:
    """Index of the last real step per row of ``mask`` [N,T] (1 = real); rows without one give 0."""
    steps = torch.arange(1, mask.shape[1] + 1, device=mask.device)
    return ((mask > 0).long() * steps).argmax(dim=1)


def liteeval_loss(out: Mapping[str, torch.Tensor], labels: torch.Tensor, mask: Optional[torch.Tensor] = None,
                  gamma: float = 0.1, lam: float = 2.0) -> Tuple[torch.Tensor, Dict[str, float]]:
    """LiteEval objective on the head's output ``{"logits": [N,T,C], "fine": [N,T], …}``.

    ``labels`` [N] class indices; ``mask`` [N,T] (1 = real step, padding at the end) or None (all real).
    Returns ``(loss, {"ce", "penalty", "fine_rate"})``: the cross-entropy of the last real step's
    logits, the batch mean of the per-video squared gap between the fine fraction and ``gamma``, and
    the batch mean of the per-video fine fraction (floats, for logging).
    """
    logits, fine = out["logits"], out["fine"]
    n, steps = fine.shape
    if logits.shape[:2] != (n, steps) or labels.shape != (n,):
        raise ConfigError("liteeval_loss got logits %s, fine %s, labels %s" % (
            tuple(logits.shape), tuple(fine.shape), tuple(labels.shape)), "expected [N,T,C], [N,T] and [N]", None)
    if mask is None:
        mask = torch.ones(n, steps, dtype=fine.dtype, device=fine.device)
    mask = mask.to(fine.dtype)
    real = mask.sum(dim=1)
    if bool((real <= 0).any()):
        raise ConfigError("a sequence in the batch has no real step", "its mask is all zero",
                          "drop empty videos before training")
    last = last_step_index(mask)
    ce = F.cross_entropy(logits[torch.arange(n, device=logits.device), last], labels)
    rate = (fine * mask).sum(dim=1) / real          # per-video fraction of fine steps
    penalty = ((rate - gamma) ** 2).mean()
    loss = ce + lam * penalty
    return loss, {"ce": float(ce.detach()), "penalty": float(penalty.detach()), "fine_rate": float(rate.detach().mean())}
