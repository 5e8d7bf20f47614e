"""The contract between StreamRuntime and a model family's stages.

A family's stages class (LiteEval ``gated.GatedStages``, SlowFast ``clip.ClipStages``, PreRNN
``recurrent.RecurrentStages``; the family table in ``edgevid.families`` names it) has:

- ``check(bundle, options)`` (classmethod): validates the bundle's graph contract and the policy
  settings with the options over them, once, before any session opens (ManifestError /
  ConfigError), and returns a ``plan`` the constructor takes as it is;
- ``__init__(bundle, sessions, stats, plan)`` and ``as_list()``: ``[(name, fn), …]`` stage
  functions, each called by one thread at a time. The first takes a source Frame; the last returns
  ``(Prediction, captured)`` or ``None`` when this frame yields no prediction (e.g. a clip window that
  is not full yet): the pipeline passes nothing on for ``None``.

The roles a stages class needs are the family's roles (``bundle.rules.roles``).
"""
from __future__ import annotations

import time
from typing import Any, Callable, Dict, Mapping

from ..bundle import Bundle

Recorder = Callable[[str, float], None]


def stages_for(bundle: Bundle) -> Any:
    """The stages class of the bundle's family (ManifestError for an unknown family)."""
    return bundle.rules.entry("stages")


def timed_infer(session: Any, feeds: Mapping[str, Any], record: Recorder, name: str) -> Dict[str, Any]:
    """``session.infer(feeds)``, its wall time recorded as ``name`` (the one place graph runs are timed)."""
    start = time.perf_counter()
    out = session.infer(feeds)
    record(name, time.perf_counter() - start)
    return out
