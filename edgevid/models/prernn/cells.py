"""Recurrent cells of PreRNN (docs/models.md §4.1–4.6), written to the patent's equations in elementwise ops.

A recurrent layer is split in two, as the deployed graphs are (docs/models.md §4.10)::

    x_t ─► input term (stateless) ─► drive ─► Recurrence.step(drive, state) ─► h_t, state_t
           traditional: W_ih y_t + b        [N, G·H]   eqs. (1)–(3)
           PreRNN:      u_t(g) = W_ig^p x_t  [N, G·H]   eqs. (5), (7)–(9)  (VRNN: G = 1)
           SIH:         v_t = W_xy x_t       [N, H]     eqs. (10)–(12), shared by every gate

:class:`Recurrence` holds only the hidden-to-hidden weights W_h* (stacked rows LSTM (i, f, g = c~, o),
GRU (r, z, h~); U(±1/√H)) and the optional per-gate bias (``gate_bias``, default off: b_xy stays in the
input term). The GRU is the patent's, not torch's (§4.6): h_t = (1 − z) ⊙ h_{t−1} + z ⊙ h~ and the reset
acts before the matmul, W_hh (r ⊙ h_{t−1}). Never nn.GRU / nn.LSTM / cuDNN: the exporter needs one step
of MatMul/Add/Sigmoid/Tanh/Mul/Slice and the patent's z is torch's 1 − z.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import torch
from torch import nn

from ...errors import ConfigError
from ...families.prernn import GATES  # G, rows of the stacked W_h* (one table for models and bundles)
GATE_NAMES = {"vrnn": ("h",), "lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "h")}
FORMS = ("traditional", "prernn", "sih")
State = Tuple[torch.Tensor, ...]                    # (h,) for VRNN/GRU, (h, c) for LSTM


def check_cell(cell: str, form: str = "prernn") -> None:
    """ConfigError unless ``cell`` ∈ vrnn/lstm/gru and ``form`` ∈ traditional/prernn/sih (SIH: gated cells only)."""
    if cell not in GATES:
        raise ConfigError("unknown cell type '%s'" % cell, None, "choose one of " + ", ".join(GATES))
    if form not in FORMS:
        raise ConfigError("unknown recurrent form '%s'" % form, None, "choose one of " + ", ".join(FORMS))
    if form == "sih" and cell == "vrnn":
        raise ConfigError("PreRNN-SIH with a VRNN cell", "SIH shares one input drive among gates and the VRNN "
                          "has none (docs/models.md §4.4)", "use --form prernn for vrnn, or an lstm/gru cell")


def drive_copies(cell: str, form: str) -> int:
    """How many H-wide blocks the input term produces: G for traditional/gate-dependent, 1 for SIH and VRNN."""
    return 1 if form == "sih" or cell == "vrnn" else GATES[cell]


class Recurrence(nn.Module):
    """Hidden-to-hidden part of a VRNN, LSTM or GRU layer; consumes a precomputed input drive.

    ``shared_drive`` (SIH): the drive is v_t [N, H] and enters every gate; otherwise it is [N, G·H]
    with one H-block per gate in the stacked order. ``activation`` is the VRNN's H (eqs. 1, 5, 6).
    """

    def __init__(self, cell: str, hidden: int, *, shared_drive: bool = False,
                 activation: Optional[nn.Module] = None, gate_bias: bool = False):
        super().__init__()
        check_cell(cell, "sih" if shared_drive else "prernn")
        if hidden < 1:
            raise ConfigError("hidden size %d" % hidden, "it must be at least 1", None)
        self.cell, self.hidden, self.shared_drive = cell, int(hidden), bool(shared_drive)
        g = GATES[cell]
        bound = 1.0 / math.sqrt(hidden)   # docs/models.md §4.5: W_h* ~ U(±1/√H), "randomly initialized"
        self.weight_hh = nn.Parameter(torch.empty(g * hidden, hidden).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(g * hidden)) if gate_bias else None
        self.activation = activation if activation is not None else (nn.Tanh() if cell == "vrnn" else None)
        self.recorder: Optional[Callable[[Dict[str, torch.Tensor]], None]] = None

    @property
    def gates(self) -> int:
        return GATES[self.cell]

    @property
    def drive_size(self) -> int:
        return self.hidden if self.shared_drive or self.cell == "vrnn" else self.gates * self.hidden

    def init_state(self, n: int, device=None, dtype=torch.float32) -> State:
        z = torch.zeros(n, self.hidden, device=device, dtype=dtype)
        return (z, z.clone()) if self.cell == "lstm" else (z,)

    def _inputs(self, drive: torch.Tensor) -> List[torch.Tensor]:
        """Per-gate input terms: v_t for every gate (SIH), else the H-blocks u_t(g) of the drive."""
        # static shapes under export tracing: the check holds for the example and need not enter the graph
        if not torch.jit.is_tracing() and drive.shape[-1] != self.drive_size:
            raise ConfigError("input drive of width %d for a %s layer expecting %d" % (
                drive.shape[-1], self.cell, self.drive_size), None, "feed the output of this layer's input term")
        terms = [drive] * self.gates if self.shared_drive else list(drive.split(self.hidden, dim=-1))
        if self.bias is not None:   # option gate_bias: b_g per gate (docs/models.md §4.5), default off
            terms = [t + b for t, b in zip(terms, self.bias.split(self.hidden))]
        return terms

    def step(self, drive: torch.Tensor, state: Optional[State] = None) -> Tuple[torch.Tensor, State]:
        """One time step: (drive [N,·], state) → (h_t [N,H], new state). Gate activations go to ``recorder``."""
        if state is None:
            state = self.init_state(drive.shape[0], drive.device, drive.dtype)
        u = self._inputs(drive)
        h_prev = state[0]
        w = self.weight_hh
        hd = self.hidden
        if self.cell == "vrnn":
            # (1)/(5)/(6): h_t = H(drive + W_hh h_{t-1})
            h = self.activation(u[0] + h_prev @ w.t())
            gates, new = {}, (h,)
        elif self.cell == "lstm":
            # (2)/(8)/(11): i, f, o = sigm(u(g) + W_hg h); c~ = tanh(u(c) + W_hc h); c = f⊙c + i⊙c~; h = o⊙tanh(c)
            rec = (h_prev @ w.t()).split(hd, dim=-1)
            i = torch.sigmoid(u[0] + rec[0])
            f = torch.sigmoid(u[1] + rec[1])
            g = torch.tanh(u[2] + rec[2])
            o = torch.sigmoid(u[3] + rec[3])
            c = f * state[1] + i * g
            h = o * torch.tanh(c)
            gates, new = {"i": i, "f": f, "g": g, "o": o}, (h, c)
        else:
            # (3)/(9)/(12): r, z = sigm(u(g) + W_hg h); h~ = tanh(u(h) + W_hh (r⊙h)); h = (1−z)⊙h + z⊙h~
            rec = (h_prev @ w[:2 * hd].t()).split(hd, dim=-1)
            r = torch.sigmoid(u[0] + rec[0])
            z = torch.sigmoid(u[1] + rec[1])
            cand = torch.tanh(u[2] + (r * h_prev) @ w[2 * hd:].t())   # reset BEFORE the matmul (patent)
            h = (1.0 - z) * h_prev + z * cand
            gates, new = {"r": r, "z": z, "h": cand}, (h,)
        if self.recorder is not None and gates:
            self.recorder({k: v.detach() for k, v in gates.items()})
        return h, new

    def forward(self, drives: torch.Tensor, state: Optional[State] = None) -> Tuple[torch.Tensor, State]:
        """Unrolled over drives [N,T,·]: returns outputs [N,T,H] and the final state."""
        outs = []
        for t in range(drives.shape[1]):
            h, state = self.step(drives[:, t], state)
            outs.append(h)
        return torch.stack(outs, 1), state


class LinearDrive(nn.Linear):
    """fc input term: W x + b with ``copies`` H-blocks (eq. 4 → 5, 7, 10).

    :meth:`from_pretrained` copies the pretrained (W_xy, b_xy) into every block (gate-dependent form: each
    W_ig^p starts as W_xy, eq. 7); :func:`traditional_drive` gives the randomly initialised W_ih of eq. (1)–(3).
    """

    def __init__(self, in_features: int, hidden: int, copies: int = 1):
        super().__init__(in_features, copies * hidden)
        self.hidden, self.copies = hidden, copies

    @classmethod
    def from_pretrained(cls, layer: nn.Linear, copies: int = 1) -> "LinearDrive":
        drive = cls(layer.in_features, layer.out_features, copies)
        with torch.no_grad():
            drive.weight.copy_(layer.weight.detach().repeat(copies, 1))
            if layer.bias is not None:
                drive.bias.copy_(layer.bias.detach().repeat(copies))
            else:
                drive.bias.zero_()
        return drive


def traditional_drive(in_features: int, hidden: int, cell: str) -> LinearDrive:
    """W_ih y_t + b of eqs. (1)–(3): G·H outputs, new weights U(±1/√H) like W_h*."""
    drive = LinearDrive(in_features, hidden, GATES[cell])
    bound = 1.0 / math.sqrt(hidden)
    with torch.no_grad():
        drive.weight.uniform_(-bound, bound)
        drive.bias.uniform_(-bound, bound)
    return drive


class RecurrentLayer(nn.Module):
    """Input term + recurrence: ``step(drive, state)`` for streaming, ``forward(x [N,T,D], state)`` for training.

    Traditional cells (eqs. 1–3) are ``RecurrentLayer(traditional_drive(D, H, cell), Recurrence(cell, H))``;
    PreRNN/SIH fc layers use :meth:`LinearDrive.from_pretrained`. See :func:`make_layer`.
    """

    def __init__(self, drive: nn.Module, recurrence: Recurrence):
        super().__init__()
        self.drive, self.recurrence = drive, recurrence

    def input_drive(self, x: torch.Tensor) -> torch.Tensor:
        return self.drive(x)

    def step(self, drive: torch.Tensor, state: Optional[State] = None) -> Tuple[torch.Tensor, State]:
        return self.recurrence.step(drive, state)

    def forward(self, x: torch.Tensor, state: Optional[State] = None) -> Tuple[torch.Tensor, State]:
        n, t = x.shape[:2]
        drives = self.drive(x.flatten(0, 1)).view(n, t, -1)    # the stateless term batched over all steps
        return self.recurrence(drives, state)


def make_layer(cell: str, form: str, *, in_features: Optional[int] = None, hidden: Optional[int] = None,
               pretrained: Optional[nn.Linear] = None, activation: Optional[nn.Module] = None,
               gate_bias: bool = False) -> RecurrentLayer:
    """A recurrent layer of ``cell`` (vrnn/lstm/gru) in ``form`` (traditional/prernn/sih).

    traditional: new W_ih of ``in_features`` → ``hidden``; prernn/sih: input weights from ``pretrained``
    (hidden = its output size; a different ``hidden`` is a ConfigError, docs/models.md §4.5).
    """
    check_cell(cell, form)
    if form == "traditional":
        if in_features is None or hidden is None:
            raise ConfigError("a traditional %s layer needs in_features and hidden" % cell, None, None)
        return RecurrentLayer(traditional_drive(in_features, hidden, cell),
                              Recurrence(cell, hidden, activation=activation, gate_bias=gate_bias))
    if pretrained is None:
        raise ConfigError("a %s layer needs the pretrained Linear it replaces" % form, None, "pass pretrained=")
    check_hidden(hidden, pretrained.out_features, "Linear(%d, %d)" % (pretrained.in_features, pretrained.out_features))
    drive = LinearDrive.from_pretrained(pretrained, drive_copies(cell, form))
    return RecurrentLayer(drive, Recurrence(cell, pretrained.out_features, shared_drive=form == "sih",
                                            activation=activation, gate_bias=gate_bias))


def check_hidden(hidden: Optional[int], out_size: int, what: str) -> None:
    """The hidden size of a converted layer is its output size (W_xy is reused, the next layer expects H)."""
    if hidden is not None and int(hidden) != out_size:
        raise ConfigError("hidden size %d for converting %s" % (hidden, what),
                          "a PreRNN layer reuses W_xy, so H is the layer's output size %d (docs/models.md §4.5)" % out_size,
                          "leave hidden unset or pass %d" % out_size)


@contextmanager
def recording_gates(module: nn.Module) -> Iterator[Dict[str, Dict[str, List[torch.Tensor]]]]:
    """Inside the block every :class:`Recurrence` in ``module`` appends its gate activations per step:
    yields {recurrence name: {gate name: [tensor [N,H] per step]}} (gate names as in :data:`GATE_NAMES`)."""
    found = {name or "recurrence": m for name, m in module.named_modules() if isinstance(m, Recurrence)}
    record: Dict[str, Dict[str, List[torch.Tensor]]] = {name: {} for name in found}

    def recorder_for(name):
        def rec(gates):
            for k, v in gates.items():
                record[name].setdefault(k, []).append(v)
        return rec

    try:
        for name, m in found.items():
            m.recorder = recorder_for(name)
        yield record
    finally:
        for m in found.values():
            m.recorder = None
