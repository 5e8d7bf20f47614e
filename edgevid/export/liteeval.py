"""LiteEval as four deployable graphs (docs/models.md §2.8), built from a trained model.

::

    frame[1,3,112,112] ─► coarse_cnn ─► feat ──────────────► feat_c ┐
                                                h_c_in, c_c_in, h_f_in, c_f_in ┤
                                                                               ▼
                     coarse_step: l2norm ─► Linear+ReLU (BN folded) ─► v_c ─► LSTM step ─► h_c_out, c_c_out
                                  gate([v_c, h_f_in, c_f_in]) ─► gate_logits
                                  sync: h_f_sync = [h_c_out, h_f_in[:, Dc:]] (c likewise) ─► classifier ─► logits_sync
    argmax(gate_logits) == 0 (ties → fine):
    frame[1,3,224,224] ─► fine_cnn ─► feat ─► feat_f ┐
                          fine_step: l2norm ─► Linear+ReLU ─► v_f; LSTM step([v_f, v_c], h_f_in, c_f_in)
                                     ─► h_f_out, c_f_out ─► classifier ─► logits

The step graphs are written with plain ops only: an LSTM step is one Gemm on ``[x, h]`` (rows
i, f, g, o; bias b_ih + b_hh), four Slices, Sigmoid/Tanh/Mul/Add; the L2 norm is
Mul/ReduceSum/Sqrt/Max/Div; each projection BN → Linear → BN → ReLU is one Linear + ReLU.
"""
from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Optional, Sequence, Tuple

import torch
from torch import nn

from ..errors import ExportError
from ..families.liteeval import COARSE_FRAME, FINE_FRAME
from ..models.liteeval import LiteEval, LiteEvalHead
from .roles import RoleGraph

ROLES = ("coarse_step", "fine_step", "coarse_cnn", "fine_cnn")  # export order: cheap graphs first

COARSE_STEP_INPUTS = ("feat_c", "h_c_in", "c_c_in", "h_f_in", "c_f_in")
COARSE_STEP_OUTPUTS = ("v_c", "h_c_out", "c_c_out", "gate_logits", "h_f_sync", "c_f_sync", "logits_sync")
FINE_STEP_INPUTS = ("feat_f", "v_c", "h_f_in", "c_f_in")
FINE_STEP_OUTPUTS = ("h_f_out", "c_f_out", "logits")


# ---------------------------------------------------------------------------------------------
# BatchNorm folding
def _bn_affine(bn: nn.BatchNorm1d) -> Tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode BN as y = s·x + t (float64)."""
    if not isinstance(bn, nn.BatchNorm1d):
        raise ExportError("cannot fold %s as a BatchNorm" % type(bn).__name__, "the projection is not BN → Linear → BN",
                          "export a LiteEval built by edgevid.models.liteeval")
    if bn.running_mean is None or bn.running_var is None:
        raise ExportError("cannot fold a BatchNorm without running statistics",
                          "track_running_stats=False uses batch statistics even in eval mode",
                          "train with track_running_stats=True")
    var = bn.running_var.detach().double()
    mean = bn.running_mean.detach().double()
    s = torch.rsqrt(var + bn.eps)
    if bn.affine:
        s = s * bn.weight.detach().double()
    t = -mean * s
    if bn.affine:
        t = t + bn.bias.detach().double()
    return s, t


def fold_bn_linear_bn(bn_in: Optional[nn.BatchNorm1d], linear: nn.Linear,
                      bn_out: Optional[nn.BatchNorm1d]) -> nn.Linear:
    """One ``nn.Linear`` equal, in eval mode, to ``bn_out(linear(bn_in(x)))`` (either BN may be None).

    With BN(x) = s⊙x + t:  s₂⊙(W(s₁⊙x + t₁) + b) + t₂ = (diag(s₂) W diag(s₁)) x + s₂⊙(W t₁ + b) + t₂.
    Computed in float64 and rounded once to the Linear's dtype.
    """
    w = linear.weight.detach().double()
    b = linear.bias.detach().double() if linear.bias is not None else torch.zeros(w.shape[0], dtype=torch.float64)
    if bn_in is not None:
        s1, t1 = _bn_affine(bn_in)
        b = b + w @ t1
        w = w * s1[None, :]
    if bn_out is not None:
        s2, t2 = _bn_affine(bn_out)
        w = w * s2[:, None]
        b = b * s2 + t2
    dtype = linear.weight.dtype
    out = nn.Linear(linear.in_features, linear.out_features, bias=True, dtype=dtype)
    with torch.no_grad():
        out.weight.copy_(w.to(dtype))
        out.bias.copy_(b.to(dtype))
    return out.eval()


def fold_projection(proj: nn.Sequential) -> nn.Sequential:
    """LiteEval's projection BN → Linear → BN → ReLU as Linear → ReLU (exact in eval mode)."""
    parts = list(proj)
    if len(parts) != 4 or not isinstance(parts[1], nn.Linear) or not isinstance(parts[3], nn.ReLU):
        raise ExportError("unexpected projection layout %s" % [type(p).__name__ for p in parts],
                          "LiteEval projections are BN → Linear → BN → ReLU (docs/models.md §2.1)",
                          "export a LiteEval built by edgevid.models.liteeval")
    return nn.Sequential(fold_bn_linear_bn(parts[0], parts[1], parts[2]), nn.ReLU())


# ---------------------------------------------------------------------------------------------
# Building blocks written with ops TensorRT parses
class L2Norm(nn.Module):
    """x / max(‖x‖₂, eps) row-wise, as Mul, ReduceSum, Sqrt, Max, Div (same as F.normalize)."""

    def __init__(self, eps: float = 1e-12):
        super().__init__()
        self.register_buffer("eps", torch.tensor([eps], dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = torch.sqrt(torch.sum(x * x, dim=1, keepdim=True))
        return x / torch.maximum(norm, self.eps)


class LSTMStep(nn.Module):
    """One ``nn.LSTMCell`` step as one Linear on [x, h]: gates = [W_ih W_hh]·[x; h] + (b_ih + b_hh).

    Gate rows are i, f, g, o (torch order): c' = σ(f)·c + σ(i)·tanh(g), h' = σ(o)·tanh(c').
    """

    def __init__(self, cell: nn.LSTMCell):
        super().__init__()
        self.input_size, self.hidden_size = cell.input_size, cell.hidden_size
        dtype = cell.weight_ih.dtype
        self.linear = nn.Linear(cell.input_size + cell.hidden_size, 4 * cell.hidden_size, dtype=dtype)
        with torch.no_grad():
            self.linear.weight.copy_(torch.cat([cell.weight_ih, cell.weight_hh], dim=1))
            bias = torch.zeros(4 * cell.hidden_size, dtype=torch.float64)
            if cell.bias:
                bias = cell.bias_ih.detach().double() + cell.bias_hh.detach().double()
            self.linear.bias.copy_(bias.to(self.linear.bias.dtype))

    def forward(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        gates = self.linear(torch.cat([x, h], dim=1))
        n = self.hidden_size
        i = torch.sigmoid(gates[:, 0:n])
        f = torch.sigmoid(gates[:, n:2 * n])
        g = torch.tanh(gates[:, 2 * n:3 * n])
        o = torch.sigmoid(gates[:, 3 * n:4 * n])
        c_new = f * c + i * g
        return o * torch.tanh(c_new), c_new


def _frozen_copy(module: nn.Module) -> nn.Module:
    m = copy.deepcopy(module).eval()
    for p in m.parameters():
        p.requires_grad_(False)
    return m


# ---------------------------------------------------------------------------------------------
# The four roles
class CoarseStepGraph(nn.Module):
    """Role ``coarse_step``: coarse projection + coarse LSTM + gate + sync candidates + classifier."""

    input_names = COARSE_STEP_INPUTS
    output_names = COARSE_STEP_OUTPUTS

    def __init__(self, head: LiteEvalHead):
        super().__init__()
        c = head.config
        self.coarse_hidden, self.fine_hidden = c.coarse_hidden, c.fine_hidden
        self.l2norm = L2Norm()
        self.proj = fold_projection(head.proj_c)
        self.lstm = LSTMStep(head.lstm_c)
        self.gate = _frozen_copy(head.gate)
        self.classifier = _frozen_copy(head.classifier)
        self.requires_grad_(False)
        self.eval()

    def forward(self, feat_c, h_c_in, c_c_in, h_f_in, c_f_in):
        v_c = self.proj(self.l2norm(feat_c))
        h_c, c_c = self.lstm(v_c, h_c_in, c_c_in)
        gate_logits = self.gate(torch.cat([v_c, h_f_in, c_f_in], dim=1))
        d = self.coarse_hidden
        if d < self.fine_hidden:
            h_sync = torch.cat([h_c, h_f_in[:, d:]], dim=1)
            c_sync = torch.cat([c_c, c_f_in[:, d:]], dim=1)
        else:  # D^c == D^f: the sync adopts the whole coarse state
            h_sync, c_sync = h_c, c_c
        return v_c, h_c, c_c, gate_logits, h_sync, c_sync, self.classifier(h_sync)


class FineStepGraph(nn.Module):
    """Role ``fine_step``: fine projection + fine LSTM on [v_f, v_c] + classifier."""

    input_names = FINE_STEP_INPUTS
    output_names = FINE_STEP_OUTPUTS

    def __init__(self, head: LiteEvalHead):
        super().__init__()
        self.l2norm = L2Norm()
        self.proj = fold_projection(head.proj_f)
        self.lstm = LSTMStep(head.lstm_f)
        self.classifier = _frozen_copy(head.classifier)
        self.requires_grad_(False)
        self.eval()

    def forward(self, feat_f, v_c, h_f_in, c_f_in):
        v_f = self.proj(self.l2norm(feat_f))
        h_f, c_f = self.lstm(torch.cat([v_f, v_c], dim=1), h_f_in, c_f_in)
        return h_f, c_f, self.classifier(h_f)


class FrameFeatureGraph(nn.Module):
    """Roles ``coarse_cnn``/``fine_cnn``: ``frame`` [1,3,S,S] → ``feat`` [1,F] (the backbone itself).

    The backbone is used as it is (not copied); ``export_onnx`` restores its training flags.
    Convolution BNs are folded by the exporter in eval mode (no BatchNormalization in the graph).
    """

    input_names = ("frame",)
    output_names = ("feat",)

    def __init__(self, cnn: nn.Module):
        super().__init__()
        self.cnn = cnn

    def forward(self, frame):
        return self.cnn(frame)


def liteeval_roles(model: LiteEval, roles: Optional[Sequence[str]] = None, *, seed: int = 0) -> "OrderedDict[str, RoleGraph]":
    """The export wrappers of a LiteEval, by role, in export order (step graphs first)."""
    if not isinstance(model, LiteEval):
        raise ExportError("export_bundle needs a LiteEval model", "got %s" % type(model).__name__,
                          "build it with edgevid.models.liteeval.create_liteeval and load the checkpoint")
    c = model.config
    gen = torch.Generator().manual_seed(seed)

    def x(*shape):
        return torch.randn(1, *shape, generator=gen)

    wanted = list(roles) if roles is not None else list(ROLES)
    unknown = [r for r in wanted if r not in ROLES]
    if unknown:
        raise ExportError("unknown LiteEval roles %s" % unknown, None, "choose from " + ", ".join(ROLES))
    out: "OrderedDict[str, RoleGraph]" = OrderedDict()
    for role in ROLES:
        if role not in wanted:
            continue
        if role == "coarse_step":
            ex = OrderedDict([("feat_c", x(c.coarse_feat).abs()), ("h_c_in", x(c.coarse_hidden)),
                              ("c_c_in", x(c.coarse_hidden)), ("h_f_in", x(c.fine_hidden)), ("c_f_in", x(c.fine_hidden))])
            out[role] = RoleGraph(role, CoarseStepGraph(model.head), ex, COARSE_STEP_OUTPUTS)
        elif role == "fine_step":
            ex = OrderedDict([("feat_f", x(c.fine_feat).abs()), ("v_c", x(c.coarse_proj).abs()),
                              ("h_f_in", x(c.fine_hidden)), ("c_f_in", x(c.fine_hidden))])
            out[role] = RoleGraph(role, FineStepGraph(model.head), ex, FINE_STEP_OUTPUTS)
        elif role == "coarse_cnn":
            out[role] = RoleGraph(role, FrameFeatureGraph(model.coarse_cnn),
                                  OrderedDict([("frame", x(3, COARSE_FRAME, COARSE_FRAME))]), ("feat",),
                                  {"arch": c.coarse_arch})
        else:
            out[role] = RoleGraph(role, FrameFeatureGraph(model.fine_cnn),
                                  OrderedDict([("frame", x(3, FINE_FRAME, FINE_FRAME))]), ("feat",),
                                  {"arch": c.fine_arch})
    return out
