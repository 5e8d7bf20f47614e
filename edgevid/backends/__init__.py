"""Inference backends behind one Session contract (see base.py): ``ort`` (ONNX Runtime, the CPU default)."""
from __future__ import annotations

from .base import Session, open_session

__all__ = ["Session", "open_session"]
