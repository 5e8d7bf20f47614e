"""A tiny LiteEval-shaped model (docs/models.md §2.2, §2.8) exported to a real bundle, plus references in numpy and torch.

Dimensions are small (F=16, Dc=8, Df=16, Pc=8, C=3) except the coarse feature, whose 1280 is part of
the graph contract. The gate can be forced: "fine" (bias favours channel 0), "coarse" (channel 1),
"tie" (equal logits: must go fine), or "mixed" (random weights; both branches occur).
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

from . import numpy_maths as nm

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
    """The LiteEval step of docs/models.md §2.2 written out directly (no edgevid code), on one of two sets of graphs:
    ``backend="numpy"`` (the default) computes in numpy from the committed fixture's weights (torch-free, runs
    on a device); ``backend="torch"`` runs the torch modules of :func:`build_modules`."""

    def __init__(self, gate: str, max_steps: int = 129, fine_cap: int = None, fine_window: int = None,
                 backend: str = "numpy"):
        self.graphs = NumpyGraphs(gate) if backend == "numpy" else TorchGraphs(gate)
        self.max_steps, self.fine_cap, self.fine_window = max_steps, fine_cap, fine_window

    def run(self, inputs: List[Dict[int, np.ndarray]], reset_at=()) -> List[Tuple[np.ndarray, str]]:
        """(logits, path) per step; state is zeroed every max_steps steps and at the steps in ``reset_at``."""
        g = self.graphs
        out, fine_steps, since = [], [], 0
        for t, x in enumerate(inputs):
            if t == 0 or since == self.max_steps or t in reset_at:
                since = 0
                h_c, c_c = np.zeros((1, DC), np.float32), np.zeros((1, DC), np.float32)
                h_f, c_f = np.zeros((1, DF), np.float32), np.zeros((1, DF), np.float32)
                if self.fine_window is None:
                    fine_steps = []
            since += 1
            v_c, h_c, c_c, gate, h_sync, c_sync, logits_sync = g.coarse_step(g.coarse_cnn(x[112]), h_c, c_c, h_f, c_f)
            recent = [s for s in fine_steps if self.fine_window is None or s > t - self.fine_window]
            allowed = self.fine_cap is None or len(recent) < self.fine_cap
            if int(np.argmax(gate[0])) == 0 and allowed:
                h_f, c_f, logits = g.fine_step(g.fine_cnn(x[224]), v_c, h_f, c_f)
                fine_steps.append(t)
                out.append((logits[0].copy(), "fine"))
            else:
                h_f, c_f = h_sync, c_sync
                out.append((logits_sync[0].copy(), "coarse"))
        return out


class TorchGraphs:
    """The four graphs as torch modules, called on and returning numpy arrays."""

    def __init__(self, gate: str):
        self.mods = build_modules(gate)

    def _call(self, index, *args):
        torch = _torch()
        with torch.no_grad():
            out = self.mods[index](*(torch.from_numpy(np.ascontiguousarray(a, np.float32)) for a in args))
        return tuple(o.numpy().copy() for o in out) if isinstance(out, tuple) else out.numpy().copy()

    def coarse_cnn(self, frame):
        return self._call(0, frame)

    def fine_cnn(self, frame):
        return self._call(1, frame)

    def coarse_step(self, *args):
        return self._call(2, *args)

    def fine_step(self, *args):
        return self._call(3, *args)


class NumpyGraphs:
    """The four graphs in numpy (float64 inside, float32 out) from the weights the fixture bundles were exported
    with (tests/fixtures/bundles/liteeval.npz, written by tests/fixtures/make_fixtures.py)."""

    def __init__(self, gate: str, weights: Dict[str, np.ndarray] = None):
        w = dict(weights if weights is not None else load_weights())
        w["core.gate.weight"], w["core.gate.bias"] = w.pop("gate.%s.weight" % gate), w.pop("gate.%s.bias" % gate)
        self.w = {k: v.astype(np.float64) for k, v in w.items() if not k.startswith("gate.")}

    def _cnn(self, prefix, frame, stride):
        w = self.w
        x = nm.relu(nm.conv(frame.astype(np.float64), w[prefix + ".conv.weight"], w[prefix + ".conv.bias"],
                            stride, 1)).mean(axis=(2, 3))
        return nm.f32(nm.relu(nm.linear(x, w[prefix + ".fc.weight"], w[prefix + ".fc.bias"])))

    def coarse_cnn(self, frame):
        return self._cnn("coarse_cnn", frame, 4)

    def fine_cnn(self, frame):
        return self._cnn("fine_cnn", frame, 8)

    def _lstm(self, x, h, c, ih, hh):
        w = self.w
        gates = nm.linear(x, w[ih + ".weight"], w[ih + ".bias"]) + nm.linear(h, w[hh + ".weight"])
        i, f, g, o = np.split(gates, 4, axis=1)
        c_new = nm.sigmoid(f) * c + nm.sigmoid(i) * np.tanh(g)
        return nm.sigmoid(o) * np.tanh(c_new), c_new

    def coarse_step(self, feat_c, h_c_in, c_c_in, h_f_in, c_f_in):
        w = self.w
        feat_c, h_c_in, c_c_in, h_f_in, c_f_in = (a.astype(np.float64) for a in (feat_c, h_c_in, c_c_in, h_f_in,
                                                                                  c_f_in))
        v_c = nm.relu(nm.linear(nm.l2norm(feat_c), w["core.proj_c.weight"], w["core.proj_c.bias"]))
        h_c, c_c = self._lstm(v_c, h_c_in, c_c_in, "core.c_ih", "core.c_hh")
        gate = nm.linear(np.concatenate([v_c, h_f_in, c_f_in], axis=1), w["core.gate.weight"], w["core.gate.bias"])
        h_f_sync = np.concatenate([h_c[:, :DC], h_f_in[:, DC:]], axis=1)
        c_f_sync = np.concatenate([c_c[:, :DC], c_f_in[:, DC:]], axis=1)
        logits = nm.linear(h_f_sync, w["core.cls.weight"], w["core.cls.bias"])
        return tuple(nm.f32(a) for a in (v_c, h_c, c_c, gate, h_f_sync, c_f_sync, logits))

    def fine_step(self, feat_f, v_c, h_f_in, c_f_in):
        w = self.w
        feat_f, v_c, h_f_in, c_f_in = (a.astype(np.float64) for a in (feat_f, v_c, h_f_in, c_f_in))
        v_f = nm.relu(nm.linear(nm.l2norm(feat_f), w["core.proj_f.weight"], w["core.proj_f.bias"]))
        h_f, c_f = self._lstm(np.concatenate([v_f, v_c], axis=1), h_f_in, c_f_in, "core.f_ih", "core.f_hh")
        return nm.f32(h_f), nm.f32(c_f), nm.f32(nm.linear(h_f, w["core.cls.weight"], w["core.cls.bias"]))


def module_weights(gate: str) -> Dict[str, np.ndarray]:
    """The weights of build_modules(gate) by name: coarse_cnn.*, fine_cnn.*, core.* (needs torch)."""
    coarse_cnn, fine_cnn, coarse_step, _ = build_modules(gate)
    out = {}
    for prefix, module in (("coarse_cnn", coarse_cnn), ("fine_cnn", fine_cnn), ("core", coarse_step.core)):
        out.update({prefix + "." + k: v.detach().numpy().copy() for k, v in module.state_dict().items()})
    return out


def fixture_weights() -> Dict[str, np.ndarray]:
    """What liteeval.npz holds: the weights shared by every gate mode, and gate.<mode>.weight/bias per mode."""
    per_mode = {gate: module_weights(gate) for gate in GATE_MODES}
    shared = {k: v for k, v in per_mode["mixed"].items() if not k.startswith("core.gate.")}
    for gate, w in per_mode.items():
        for k, v in shared.items():
            assert np.array_equal(w[k], v), "%s differs between gate modes (%s)" % (k, gate)  # only the gate does
    for gate, w in per_mode.items():
        shared["gate.%s.weight" % gate], shared["gate.%s.bias" % gate] = w["core.gate.weight"], w["core.gate.bias"]
    return shared


def load_weights() -> Dict[str, np.ndarray]:
    from .bundles import FIXTURES

    with np.load(str(FIXTURES / "liteeval.npz")) as data:
        return {k: data[k] for k in data.files}


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
