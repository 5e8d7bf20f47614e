"""A tiny clip model (the SlowFast graph contract, docs/models.md §3.5) exported to a real bundle, plus references in numpy and torch.

::

    clip [1,3,T,S,S] ─► Conv3d 3→4, kernel 3×3², stride 1,4² ─► ReLU ─► mean over H,W ─► [1, 4·T] ─► FC ─► logits [1,C]

Flattening over time (not pooling) makes the logits depend on the order of the frames, so a window
assembled in the wrong order cannot match the reference.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from . import numpy_maths as nm

T, S, C = 8, 32, 3
LABELS = ["wave", "walk", "jump"]
GMACS = 0.05
POLICY = {"kind": "clip", "frames": T, "step_fps": 10.0, "every": 2, "smooth": 1, "pad": "none", "max_gap_s": None}


def build_module(seed: int = 0):
    import torch

    nn = torch.nn
    torch.manual_seed(seed)

    class TinyClip(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv3d(3, 4, (3, 3, 3), stride=(1, 4, 4), padding=(1, 1, 1))
            self.fc = nn.Linear(4 * T, C)
            with torch.no_grad():
                self.fc.weight.mul_(8.0)

        def forward(self, clip):
            x = torch.relu(self.conv(clip)).mean(dim=(3, 4))
            return self.fc(x.flatten(1))

    return TinyClip().eval()


def make_bundle(root: Path, policy: Optional[Dict] = None):
    """Export the tiny model to ``root`` with edgevid's exporter and write bundle.json; returns the Bundle."""
    import torch

    from edgevid.bundle import Bundle, load_bundle
    from edgevid.export.onnx import export_onnx
    from edgevid.fsutil import sha256_file
    from edgevid.spec import KINETICS_MEAN, KINETICS_STD, GraphSpec, PreprocessSpec

    root.mkdir(parents=True, exist_ok=True)
    inputs, outputs = export_onnx(build_module(), {"clip": torch.rand(1, 3, T, S, S)}, ["logits"],
                                  root / "clip.onnx", role="clip")
    graphs = {"clip": GraphSpec("clip", "clip.onnx", sha256_file(root / "clip.onnx"), inputs, outputs, gmacs=GMACS)}
    Bundle(root=root, family="slowfast", labels=list(LABELS), graphs=graphs,
           preprocess=PreprocessSpec(resize_short=40, crop=S, sizes=(S,), mean=KINETICS_MEAN, std=KINETICS_STD),
           policy=dict(POLICY, **(policy or {}))).save()
    return load_bundle(root)


def clip_logits(windows: List[np.ndarray], backend: str = "numpy") -> List[np.ndarray]:
    """Logits [C] of each window ([T,3,S,S] frames, oldest first), assembled here with np.stack: in numpy from
    tests/fixtures/bundles/clip.npz (the default, torch-free), or on the torch module."""
    clips = [np.ascontiguousarray(np.stack(list(window), axis=1)[None]) for window in windows]  # [1,3,T,S,S]
    if backend == "numpy":
        w = {k: v.astype(np.float64) for k, v in load_weights().items()}
        out = []
        for clip in clips:
            x = nm.relu(nm.conv(clip.astype(np.float64), w["conv.weight"], w["conv.bias"], (1, 4, 4), 1))
            out.append(nm.f32(nm.linear(x.mean(axis=(3, 4)).reshape(1, -1), w["fc.weight"], w["fc.bias"]))[0])
        return out
    import torch

    module = build_module()
    with torch.no_grad():
        return [module(torch.from_numpy(clip))[0].numpy().copy() for clip in clips]


def module_weights() -> Dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in build_module().state_dict().items()}


def load_weights() -> Dict[str, np.ndarray]:
    from .bundles import CLIP, FIXTURES

    with np.load(str(FIXTURES / (CLIP + ".npz"))) as data:
        return {k: data[k] for k in data.files}


def schedule(n_slots: int, every: int, pad: str = "none", frames: int = T) -> List[Optional[bool]]:
    """Per slot (one slot per frame): None = warm-up, True = a clip runs, False = held."""
    out: List[Optional[bool]] = []
    last = None
    for i in range(n_slots):
        if pad == "none" and i < frames - 1:
            out.append(None)
            continue
        run = last is None or i - last >= every
        last = i if run else last
        out.append(run)
    return out


def windows_at(slots: List[np.ndarray], i: int, pad: str = "none", frames: int = T) -> List[np.ndarray]:
    """The window ending at slot ``i``: the last T slots, padded with slot 0 in front for pad="repeat"."""
    history = list(slots[:i + 1])
    if pad == "repeat" and len(history) < frames:
        history = [slots[0]] * (frames - len(history)) + history
    return history[-frames:]


def image_at(t: float, h: int = 40, w: int = 48) -> np.ndarray:
    """A deterministic BGR image for stream time ``t`` (the same at the same time whatever the frame rate)."""
    rng = np.random.default_rng(int(round(t * 120)))
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def frames(times, image=image_at) -> list:
    from edgevid.runtime.source import Frame

    return [Frame(i, float(t), image(t), 0.0) for i, t in enumerate(times)]
