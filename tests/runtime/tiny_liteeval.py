"""A tiny LiteEval-shaped model (docs/models.md §2.2, §2.8) exported to a real bundle, plus a torch reference.

Dimensions are small (F=16, Dc=8, Df=16, Pc=8, C=3) except the coarse feature, whose 1280 is part of
the graph contract. The gate can be forced: "fine" (bias favours channel 0), "coarse" (channel 1),
"tie" (equal logits: must go fine), or "mixed" (random weights; both branches occur).
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

F, DC, DF, PC, C, COARSE_FEAT = 16, 8, 16, 8, 3, 1280
LABELS = ["wave", "walk", "jump"]
GMACS = {"coarse_cnn": 0.08, "coarse_step": 0.002, "fine_cnn": 7.8, "fine_step": 0.04}
POLICY = {"kind": "gated", "max_steps": 129, "max_gap_s": 5.0, "step_fps": None, "fine_cap": None, "fine_window": None}
GATE_MODES = ("fine", "coarse", "tie", "mixed")


def _torch():
    import torch
    return torch


def build_modules(gate: str, seed: int = 0):
    """(coarse_cnn, fine_cnn, coarse_step, fine_step) torch modules sharing one set of weights."""
    torch = _torch()
    nn = torch.nn
    torch.manual_seed(seed)

    def l2norm(x):
        return x / torch.clamp(torch.sqrt((x * x).sum(dim=1, keepdim=True)), min=1e-12)

    def lstm(x, h, c, w_ih, w_hh):
        gates = w_ih(x) + w_hh(h)
        i, f, g, o = torch.split(gates, h.shape[1], dim=1)
        c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c_new), c_new

    class CNN(nn.Module):
        def __init__(self, stride: int, out: int):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, stride=stride, padding=1)
            self.fc = nn.Linear(8, out)

        def forward(self, frame):
            x = torch.relu(self.conv(frame)).mean(dim=(2, 3))
            return torch.relu(self.fc(x))

    class Core(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj_c, self.proj_f = nn.Linear(COARSE_FEAT, PC), nn.Linear(F, F)
            self.c_ih, self.c_hh = nn.Linear(PC, 4 * DC), nn.Linear(DC, 4 * DC, bias=False)
            self.f_ih, self.f_hh = nn.Linear(F + PC, 4 * DF), nn.Linear(DF, 4 * DF, bias=False)
            self.gate = nn.Linear(PC + 2 * DF, 2)
            self.cls = nn.Linear(DF, C)
            with torch.no_grad():
                if gate != "mixed":
                    self.gate.weight.zero_()
                    self.gate.bias.copy_(torch.tensor({"fine": [1.0, 0.0], "coarse": [0.0, 1.0],
                                                       "tie": [0.5, 0.5]}[gate]))
                else:
                    self.gate.weight.mul_(6.0)
                    self.gate.bias.zero_()
                self.cls.weight.mul_(4.0)

    class CoarseStep(nn.Module):
        def __init__(self, core):
            super().__init__()
            self.core = core

        def forward(self, feat_c, h_c_in, c_c_in, h_f_in, c_f_in):
            k = self.core
            v_c = torch.relu(k.proj_c(l2norm(feat_c)))
            h_c, c_c = lstm(v_c, h_c_in, c_c_in, k.c_ih, k.c_hh)
            gate_logits = k.gate(torch.cat([v_c, h_f_in, c_f_in], dim=1))
            h_f_sync = torch.cat([h_c[:, :DC], h_f_in[:, DC:]], dim=1)
            c_f_sync = torch.cat([c_c[:, :DC], c_f_in[:, DC:]], dim=1)
            return v_c, h_c, c_c, gate_logits, h_f_sync, c_f_sync, k.cls(h_f_sync)

    class FineStep(nn.Module):
        def __init__(self, core):
            super().__init__()
            self.core = core

        def forward(self, feat_f, v_c, h_f_in, c_f_in):
            k = self.core
            v_f = torch.relu(k.proj_f(l2norm(feat_f)))
            h_f, c_f = lstm(torch.cat([v_f, v_c], dim=1), h_f_in, c_f_in, k.f_ih, k.f_hh)
            return h_f, c_f, k.cls(h_f)

    core = Core()
    mods = (CNN(4, COARSE_FEAT), CNN(8, F), CoarseStep(core), FineStep(core))
    for m in mods:
        m.eval()
    return mods


IO: Dict[str, Tuple[List[Tuple[str, Tuple[int, ...]]], List[Tuple[str, Tuple[int, ...]]]]] = {
    "coarse_cnn": ([("frame", (1, 3, 112, 112))], [("feat", (1, COARSE_FEAT))]),
    "fine_cnn": ([("frame", (1, 3, 224, 224))], [("feat", (1, F))]),
    "coarse_step": ([("feat_c", (1, COARSE_FEAT)), ("h_c_in", (1, DC)), ("c_c_in", (1, DC)), ("h_f_in", (1, DF)),
                     ("c_f_in", (1, DF))],
                    [("v_c", (1, PC)), ("h_c_out", (1, DC)), ("c_c_out", (1, DC)), ("gate_logits", (1, 2)),
                     ("h_f_sync", (1, DF)), ("c_f_sync", (1, DF)), ("logits_sync", (1, C))]),
    "fine_step": ([("feat_f", (1, F)), ("v_c", (1, PC)), ("h_f_in", (1, DF)), ("c_f_in", (1, DF))],
                  [("h_f_out", (1, DF)), ("c_f_out", (1, DF)), ("logits", (1, C))]),
}
ROLE_INDEX = {"coarse_cnn": 0, "fine_cnn": 1, "coarse_step": 2, "fine_step": 3}


def export_role(module, role: str, path: Path) -> None:
    torch = _torch()
    inputs, outputs = IO[role]
    args = tuple(torch.rand(*shape) for _, shape in inputs)
    torch.onnx.export(module, args, str(path), input_names=[n for n, _ in inputs],
                      output_names=[n for n, _ in outputs], opset_version=17, dynamo=False)


def save_bundle(root: Path, policy: Dict = None):
    """Write bundle.json for the four ONNX files already in ``root``; returns the loaded Bundle."""
    from edgevid.bundle import Bundle, load_bundle
    from edgevid.fsutil import sha256_file
    from edgevid.spec import GraphSpec, PreprocessSpec, TensorSpec

    graphs = {}
    for role, (inputs, outputs) in IO.items():
        file = role + ".onnx"
        graphs[role] = GraphSpec(role, file, sha256_file(root / file), [TensorSpec(n, s) for n, s in inputs],
                                 [TensorSpec(n, s) for n, s in outputs], gmacs=GMACS[role])
    Bundle(root=root, family="liteeval", labels=list(LABELS), graphs=graphs,
           preprocess=PreprocessSpec(sizes=(224, 112)), policy=dict(POLICY, **(policy or {}))).save()
    return load_bundle(root)


def make_bundle(root: Path, gate: str, base: Path = None):
    """Export a bundle for ``gate`` into ``root``; CNN graphs are copied from ``base`` when given."""
    root.mkdir(parents=True, exist_ok=True)
    mods = build_modules(gate)
    for role, index in ROLE_INDEX.items():
        if base is not None and role in ("coarse_cnn", "fine_cnn"):
            shutil.copyfile(str(base / (role + ".onnx")), str(root / (role + ".onnx")))
        else:
            export_role(mods[index], role, root / (role + ".onnx"))
    return save_bundle(root)


class Reference:
    """The LiteEval step of docs/models.md §2.2 written out directly on the torch modules (no edgevid code)."""

    def __init__(self, gate: str, max_steps: int = 129, fine_cap: int = None, fine_window: int = None):
        self.mods = build_modules(gate)
        self.max_steps, self.fine_cap, self.fine_window = max_steps, fine_cap, fine_window

    def run(self, inputs: List[Dict[int, np.ndarray]], reset_at=()) -> List[Tuple[np.ndarray, str]]:
        """(logits, path) per step; state is zeroed every max_steps steps and at the steps in ``reset_at``."""
        torch = _torch()
        coarse_cnn, fine_cnn, coarse_step, fine_step = self.mods
        out, fine_steps, since = [], [], 0
        with torch.no_grad():
            for t, x in enumerate(inputs):
                if t == 0 or since == self.max_steps or t in reset_at:
                    since = 0
                    h_c, c_c, h_f, c_f = (torch.zeros(1, DC), torch.zeros(1, DC), torch.zeros(1, DF), torch.zeros(1, DF))
                    if self.fine_window is None:
                        fine_steps = []
                since += 1
                feat_c = coarse_cnn(torch.from_numpy(x[112]))
                v_c, h_c, c_c, gate, h_sync, c_sync, logits_sync = coarse_step(feat_c, h_c, c_c, h_f, c_f)
                recent = [s for s in fine_steps if self.fine_window is None or s > t - self.fine_window]
                allowed = self.fine_cap is None or len(recent) < self.fine_cap
                if int(torch.argmax(gate[0])) == 0 and allowed:
                    feat_f = fine_cnn(torch.from_numpy(x[224]))
                    h_f, c_f, logits = fine_step(feat_f, v_c, h_f, c_f)
                    fine_steps.append(t)
                    out.append((logits[0].numpy().copy(), "fine"))
                else:
                    h_f, c_f = h_sync, c_sync
                    out.append((logits_sync[0].numpy().copy(), "coarse"))
        return out


def write_video(path: Path, frames: int = 24, fps: float = 10.0, size: Tuple[int, int] = (96, 72), seed: int = 0):
    """A small MJPG .avi of moving coloured blocks (decoding is deterministic)."""
    import cv2

    rng = np.random.default_rng(seed)
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    base = rng.integers(0, 255, (h // 8, w // 8, 3), dtype=np.uint8)
    for i in range(frames):
        img = cv2.resize(np.roll(base, i, axis=1), (w, h), interpolation=cv2.INTER_NEAREST)
        img[(i * 3) % h:(i * 3) % h + 10, :, :] = (i * 37) % 255
        writer.write(img)
    writer.release()
    return path
