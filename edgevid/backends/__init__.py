"""Inference backends behind one Session contract (base.py), found through one registry (registry.py):
``ort`` (ONNX Runtime, the CPU default). Nothing heavy is imported until a session activates."""
from __future__ import annotations

from .base import Session
from .registry import CHOICES, open_role, open_session, resolve_backend, session_factory

__all__ = ["CHOICES", "Session", "open_role", "open_session", "resolve_backend", "session_factory"]
