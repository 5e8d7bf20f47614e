"""The committed fixture bundles (tests/fixtures/bundles, written by tests/fixtures/make_fixtures.py).

They are real ONNX bundles of the tiny models in tiny_liteeval, tiny_prernn and tiny_clip, committed so the
runtime tests need no torch (a device has none); the weights they were exported with are stored next to them
as .npz for the numpy references. ``copy_bundle`` gives a test its own copy (tests never write the committed
files).
"""
from __future__ import annotations

import shutil
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bundles"

LITEEVAL = {gate: "liteeval-" + gate for gate in ("fine", "coarse", "tie", "mixed")}
PRERNN = {cell: "prernn-" + cell for cell in ("lstm", "gru", "vrnn", "lstm_u")}
CLIP = "clip"


def committed(name: str) -> Path:
    """The committed folder of fixture bundle ``name`` (read it, never write it)."""
    path = FIXTURES / name
    if not (path / "bundle.json").is_file():
        raise FileNotFoundError("fixture bundle %s is missing: run python3 tests/fixtures/make_fixtures.py" % path)
    return path


def copy_bundle(name: str, dest: Path) -> Path:
    """A copy of fixture bundle ``name`` at ``dest`` (created); returns ``dest``."""
    shutil.copytree(str(committed(name)), str(dest))
    return dest
