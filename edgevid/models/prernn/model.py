"""A CNN with one layer converted to a PreRNN / SIH / traditional recurrent layer (docs/models.md §4.10)::

    frame [N,3,S,S] ─► trunk ─► x_t (, γ_t) ─► drive ─► v_t [N,H] or u_t [N,G·H]     backbone (stateless)
                                                           │
                                  (h_{t-1}, c_{t-1}) ─► recurrence ─► h_t ─► head ─► logits_t   step

``trunk`` = every pretrained layer before the converted one, ``drive`` = the converted layer's input term
(pretrained W_xy, b_xy; conv kernel + frozen BN + residual + pool), ``recurrence`` = the new W_h*, ``head``
= the layers after the converted one, unchanged. :meth:`PreRNNModel.backbone` and :meth:`PreRNNModel.step`
are the two roles an exporter wraps (:meth:`backbone_graph`, :meth:`step_graph`).
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import torch
from torch import nn

from .cells import Recurrence, State


def as_tuple(x) -> Tuple[torch.Tensor, ...]:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


class PreRNNModel(nn.Module):
    """trunk → drive → recurrence → head; runs clips [N,T,3,S,S] with state carried, or one step at a time."""

    def __init__(self, trunk: nn.Module, drive: nn.Module, recurrence: Recurrence, head: nn.Module,
                 info: Optional[Dict[str, Any]] = None):
        super().__init__()
        self.trunk, self.drive, self.recurrence, self.head = trunk, drive, recurrence, head
        self.info = dict(info or {})     # cell, form, layer, kind (fc/conv/top): plain values for reports

    @property
    def cell(self) -> str:
        return self.recurrence.cell

    @property
    def hidden(self) -> int:
        return self.recurrence.hidden

    @property
    def has_cell_state(self) -> bool:
        return self.recurrence.cell == "lstm"

    def init_state(self, n: int, device=None) -> State:
        return self.recurrence.init_state(n, device)

    # stateless part ------------------------------------------------------------------------------
    def trunk_features(self, frames: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Frames [N,3,S,S] → the converted layer's inputs: (x,) for fc, (x, γ) for a ResNet conv unit."""
        return as_tuple(self.trunk(frames))

    def backbone(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames [N,3,S,S] → input drive v [N,H] (SIH, VRNN) or u [N,G·H] (gate-dependent, traditional)."""
        return self.drive(*self.trunk_features(frames))

    # one recurrent step ---------------------------------------------------------------------------
    def step(self, v: torch.Tensor, h: torch.Tensor, c: Optional[torch.Tensor] = None):
        """(v, h_{t-1}, c_{t-1}) → (h_t, c_t, logits_t); c is None for VRNN/GRU."""
        state = (h, c) if self.has_cell_state else (h,)
        if self.has_cell_state and c is None:
            state = (h, torch.zeros_like(h))
        h, new = self.recurrence.step(v, state)
        return h, (new[1] if self.has_cell_state else None), self.head(h)

    # sequences -------------------------------------------------------------------------------------
    def forward(self, frames: torch.Tensor, state: Optional[State] = None) -> Dict[str, Any]:
        """Clips [N,T,3,S,S] → {"logits": [N,T,C], "hidden": [N,T,H], "state": final state}."""
        n, t = frames.shape[:2]
        feats = tuple(f.view(n, t, *f.shape[1:]) for f in self.trunk_features(frames.flatten(0, 1)))
        return self.forward_features(feats, state)

    def forward_features(self, feats: Tuple[torch.Tensor, ...], state: Optional[State] = None) -> Dict[str, Any]:
        """Like :meth:`forward` from cached trunk outputs (each [N,T,…]); the stateless terms run batched."""
        n, t = feats[0].shape[:2]
        drives = self.drive(*(f.flatten(0, 1) for f in feats)).view(n, t, -1)
        hidden, state = self.recurrence(drives, state)
        logits = self.head(hidden.flatten(0, 1)).view(n, t, -1)
        return {"logits": logits, "hidden": hidden, "state": state}

    # export views ------------------------------------------------------------------------------------
    def backbone_graph(self) -> nn.Module:
        """Module ``frame → v`` (role ``backbone``; shares this model's parameters)."""
        return BackboneGraph(self)

    def step_graph(self) -> nn.Module:
        """Module ``(v, h_in[, c_in]) → (h_out[, c_out], logits)`` (role ``step``; c only for LSTM)."""
        return StepGraph(self)


class BackboneGraph(nn.Module):
    def __init__(self, model: PreRNNModel):
        super().__init__()
        self.model = model

    def forward(self, frame: torch.Tensor) -> torch.Tensor:
        return self.model.backbone(frame)


class StepGraph(nn.Module):
    def __init__(self, model: PreRNNModel):
        super().__init__()
        self.model = model

    @property
    def input_names(self):
        return ["v", "h_in", "c_in"] if self.model.has_cell_state else ["v", "h_in"]

    @property
    def output_names(self):
        return ["h_out", "c_out", "logits"] if self.model.has_cell_state else ["h_out", "logits"]

    def forward(self, v: torch.Tensor, h_in: torch.Tensor, c_in: Optional[torch.Tensor] = None):
        h, c, logits = self.model.step(v, h_in, c_in)
        return (h, c, logits) if self.model.has_cell_state else (h, logits)
