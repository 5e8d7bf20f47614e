"""Tiny PreRNN-shaped models (docs/models.md §4.4, §4.10) exported to real bundles, plus references in numpy and torch.

::

    frame [1,3,224,224] ─► backbone: conv 3→4 /8 ─► ReLU ─► mean ─► fc ─► v [1,H]  (u [1,4H] for "lstm_u")
    v | u, h_in[, c_in] ─► step: SIH-LSTM | patent GRU | VRNN ─► h_out[, c_out] ─► fc ─► logits [1,C]

Cells (SIH: the one drive v feeds every gate; the gate-dependent "lstm_u" has one slice of u per gate):

- LSTM: i, f, g, o = σ/σ/tanh/σ(v + W_h* h); c = f⊙c + i⊙g; h = o⊙tanh(c)
- GRU (patent, §4.6): r, z = σ(v + W_hr h), σ(v + W_hz h); h~ = tanh(v + W_hh(r⊙h)); h = (1−z)⊙h + z⊙h~
- VRNN: h = tanh(v + W_hh h)
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from . import numpy_maths as nm

H, C = 8, 3
LABELS = ["wave", "walk", "jump"]
GMACS = {"backbone": 0.5, "step": 0.001}
CELLS = ("lstm", "gru", "vrnn", "lstm_u")


def _torch():
    import torch
    return torch


def build_modules(cell: str, seed: int = 0):
    """(backbone, step) torch modules for ``cell``; weights are fixed by ``seed``."""
    torch = _torch()
    nn = torch.nn
    torch.manual_seed(seed)
    gates = {"lstm": 4, "gru": 3, "vrnn": 1, "lstm_u": 4}[cell]
    drive = 4 * H if cell == "lstm_u" else H

    class Backbone(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, stride=8, padding=1)
            self.fc = nn.Linear(4, drive)
            with torch.no_grad():
                self.fc.weight.mul_(3.0)  # a drive large enough that the gates really move

        def forward(self, frame):
            return self.fc(torch.relu(self.conv(frame)).mean(dim=(2, 3)))

    class Step(nn.Module):
        def __init__(self):
            super().__init__()
            self.w_h = nn.Linear(H, gates * H, bias=False)
            self.cls = nn.Linear(H, C)
            with torch.no_grad():
                self.w_h.weight.mul_(2.0)

        def lstm(self, drive, h_in, c_in):
            u = drive if cell == "lstm_u" else torch.cat([drive] * 4, dim=1)
            i, f, g, o = torch.split(u + self.w_h(h_in), H, dim=1)
            c = torch.sigmoid(f) * c_in + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            return h, c, self.cls(h)

        def gru(self, v, h_in):
            w_r, w_z, w_h = torch.split(self.w_h.weight, H, dim=0)
            r = torch.sigmoid(v + h_in @ w_r.t())
            z = torch.sigmoid(v + h_in @ w_z.t())
            h_new = torch.tanh(v + (r * h_in) @ w_h.t())
            h = (1 - z) * h_in + z * h_new
            return h, self.cls(h)

        def vrnn(self, v, h_in):
            h = torch.tanh(v + self.w_h(h_in))
            return h, self.cls(h)

    class LstmStep(Step):
        def forward(self, v, h_in, c_in):
            return self.lstm(v, h_in, c_in)

    class LstmUStep(Step):  # export_onnx binds inputs by forward()'s parameter names
        def forward(self, u, h_in, c_in):
            return self.lstm(u, h_in, c_in)

    class GruStep(Step):
        def forward(self, v, h_in):
            return self.gru(v, h_in)

    class VrnnStep(Step):
        def forward(self, v, h_in):
            return self.vrnn(v, h_in)

    step = {"lstm": LstmStep, "lstm_u": LstmUStep, "gru": GruStep, "vrnn": VrnnStep}[cell]()
    backbone = Backbone()
    backbone.eval()
    step.eval()
    return backbone, step


def policy_for(cell: str, **policy) -> Dict:
    base = {"kind": "recurrent", "cell": "lstm" if cell == "lstm_u" else cell, "max_steps": None,
            "max_gap_s": None, "scene_cut": None, "step_fps": None, "step_unit": "frame"}
    base.update(policy)
    return base


def make_bundle(root: Path, cell: str = "lstm", **policy):
    """Export ``cell``'s tiny backbone and step with export_onnx into a bundle at ``root``; returns it loaded."""
    torch = _torch()
    from edgevid.bundle import Bundle, load_bundle
    from edgevid.export.onnx import export_onnx
    from edgevid.fsutil import sha256_file
    from edgevid.spec import GraphSpec, PreprocessSpec

    root.mkdir(parents=True, exist_ok=True)
    backbone, step = build_modules(cell)
    drive = "u" if cell == "lstm_u" else "v"
    width = 4 * H if cell == "lstm_u" else H
    graphs = {}
    feeds = {drive: torch.rand(1, width), "h_in": torch.rand(1, H)}
    outputs = ["h_out", "logits"]
    if cell in ("lstm", "lstm_u"):
        feeds["c_in"] = torch.rand(1, H)
        outputs = ["h_out", "c_out", "logits"]
    for role, module, example, outs in (("backbone", backbone, {"frame": torch.rand(1, 3, 224, 224)}, [drive]),
                                        ("step", step, feeds, outputs)):
        file = root / (role + ".onnx")
        inputs, outs_spec = export_onnx(module, example, outs, file, role=role)
        graphs[role] = GraphSpec(role, file.name, sha256_file(file), inputs, outs_spec, gmacs=GMACS[role])
    Bundle(root=root, family="prernn", labels=list(LABELS), graphs=graphs,
           preprocess=PreprocessSpec(sizes=(224,)), policy=policy_for(cell, **policy)).save()
    return load_bundle(root)


class Reference:
    """The cell written out directly, state zeroed at step 0 and at the steps in ``reset_at``: in numpy from the
    committed fixture's weights (``backend="numpy"``, the default, torch-free) or on the torch modules."""

    def __init__(self, cell: str, backend: str = "numpy"):
        self.cell = cell
        self.graphs = NumpyGraphs(cell) if backend == "numpy" else TorchGraphs(cell)

    def backbone(self, frame: np.ndarray) -> np.ndarray:
        return self.graphs.backbone(frame)

    def run(self, inputs: Sequence[np.ndarray], reset_at=()) -> List[Dict[str, np.ndarray]]:
        """Per step: logits [C] and the state after the step (h, and c for LSTM)."""
        lstm = self.cell in ("lstm", "lstm_u")
        out: List[Dict[str, np.ndarray]] = []
        resets = set(reset_at)
        for t, x in enumerate(inputs):
            if t == 0 or t in resets:
                h, c = np.zeros((1, H), np.float32), np.zeros((1, H), np.float32)
            drive = self.graphs.backbone(x)
            if lstm:
                h, c, logits = self.graphs.step(drive, h, c)
            else:
                h, logits = self.graphs.step(drive, h)
            item = {"logits": logits[0].copy(), "h": h.copy()}
            if lstm:
                item["c"] = c.copy()
            out.append(item)
        return out


class TorchGraphs:
    """backbone and step as the torch modules, on and to numpy arrays."""

    def __init__(self, cell: str):
        self.mods = build_modules(cell)

    def _call(self, module, *args):
        torch = _torch()
        with torch.no_grad():
            out = module(*(torch.from_numpy(np.ascontiguousarray(a, np.float32)) for a in args))
        return tuple(o.numpy().copy() for o in out) if isinstance(out, tuple) else out.numpy().copy()

    def backbone(self, frame):
        return self._call(self.mods[0], frame)

    def step(self, *args):
        return self._call(self.mods[1], *args)


class NumpyGraphs:
    """backbone and step in numpy (float64 inside, float32 out) from tests/fixtures/bundles/prernn-<cell>.npz."""

    def __init__(self, cell: str, weights: Dict[str, np.ndarray] = None):
        self.cell = cell
        w = weights if weights is not None else load_weights(cell)
        self.w = {k: v.astype(np.float64) for k, v in w.items()}

    def backbone(self, frame):
        w = self.w
        x = nm.relu(nm.conv(frame.astype(np.float64), w["backbone.conv.weight"], w["backbone.conv.bias"], 8, 1))
        return nm.f32(nm.linear(x.mean(axis=(2, 3)), w["backbone.fc.weight"], w["backbone.fc.bias"]))

    def step(self, drive, h_in, c_in=None):
        w, cell = self.w, self.cell
        drive, h_in = drive.astype(np.float64), h_in.astype(np.float64)
        w_h, cls_w, cls_b = w["step.w_h.weight"], w["step.cls.weight"], w["step.cls.bias"]
        if cell in ("lstm", "lstm_u"):
            u = drive if cell == "lstm_u" else np.concatenate([drive] * 4, axis=1)
            i, f, g, o = np.split(u + nm.linear(h_in, w_h), 4, axis=1)
            c = nm.sigmoid(f) * c_in.astype(np.float64) + nm.sigmoid(i) * np.tanh(g)
            h = nm.sigmoid(o) * np.tanh(c)
            return nm.f32(h), nm.f32(c), nm.f32(nm.linear(h, cls_w, cls_b))
        if cell == "gru":
            w_r, w_z, w_hh = np.split(w_h, 3, axis=0)
            r = nm.sigmoid(drive + h_in @ w_r.T)
            z = nm.sigmoid(drive + h_in @ w_z.T)
            h = (1 - z) * h_in + z * np.tanh(drive + (r * h_in) @ w_hh.T)
        else:
            h = np.tanh(drive + nm.linear(h_in, w_h))
        return nm.f32(h), nm.f32(nm.linear(h, cls_w, cls_b))


def module_weights(cell: str) -> Dict[str, np.ndarray]:
    """The weights of build_modules(cell): backbone.*, step.* (needs torch)."""
    backbone, step = build_modules(cell)
    out = {"backbone." + k: v.detach().numpy().copy() for k, v in backbone.state_dict().items()}
    out.update({"step." + k: v.detach().numpy().copy() for k, v in step.state_dict().items()})
    return out


def load_weights(cell: str) -> Dict[str, np.ndarray]:
    from .bundles import FIXTURES, PRERNN

    with np.load(str(FIXTURES / (PRERNN[cell] + ".npz"))) as data:
        return {k: data[k] for k in data.files}


def scene_frames(count: int, cut_at: Sequence[int] = (), fps: float = 10.0,
                 gaps: Optional[Dict[int, float]] = None):
    """``count`` BGR frames (72×96) of a smooth, slowly panning scene that switches to a very different
    one (dark ↔ bright, other pattern) at each index of ``cut_at``; timestamps at ``fps``, plus
    ``gaps[i]`` extra seconds from frame i on."""
    from edgevid.runtime.source import Frame

    y, x = np.mgrid[0:72, 0:96].astype(np.float32)
    frames, scene, shift = [], 0, 0.0
    for i in range(count):
        scene += i in cut_at
        shift += (gaps or {}).get(i, 0.0)
        bright, period = (70.0, 48.0) if scene % 2 == 0 else (185.0, 20.0)
        channels = [bright + 50.0 * np.sin(2 * np.pi * (x + i) / period + ch) * np.cos(2 * np.pi * y / 36.0)
                    for ch in range(3)]
        image = np.clip(np.stack(channels, axis=2), 0, 255).astype(np.uint8)
        image[(i * 2) % 62:(i * 2) % 62 + 4, 40:56, :] = 255 - (i * 7) % 255  # a small moving bar
        frames.append(Frame(i, i / fps + shift, image, 0.0))
    return frames
