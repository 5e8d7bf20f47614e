"""The contract between StreamRuntime and a model family's stages.

A family's stages class (LiteEval ``gated.GatedStages``, SlowFast ``clip.ClipStages``, PreRNN
``recurrent.RecurrentStages``; the family table in ``edgevid.families`` names it) has:

- ``check(bundle, options)`` (classmethod): validates the bundle's graph contract and the policy
  settings with the options over them, once, before any session opens (ManifestError /
  ConfigError), and returns a ``plan`` the constructor takes as it is;
- ``__init__(bundle, sessions, stats, plan)`` (the runtime adds ``plan["queue_size"]``, the size of the
  queues between the stages) and ``as_list()``: ``[(name, fn), …]`` stage
  functions, each called by one thread at a time. The first takes a source Frame; the last returns
  ``(Prediction, captured)`` or ``None`` when this frame yields no prediction (e.g. a clip window that
  is not full yet): the pipeline passes nothing on for ``None``;
- ``close()``: called once the run's threads have ended, before the sessions are freed.

The roles a stages class needs are the family's roles (``bundle.rules.roles``).
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Tuple


class Stages:
    """Base of a family's stages class: the contract above as signatures. ``THREADS`` (threads.py) maps
    "sequential" / "pipelined" to intra-op threads per role; empty: the defaults."""

    THREADS: Mapping[str, Mapping[str, Any]] = {}

    @classmethod
    def check(cls, bundle: Any, options: Mapping[str, Any]) -> Dict[str, Any]:
        raise NotImplementedError

    def __init__(self, bundle: Any, sessions: Dict[str, Any], stats: Any, plan: Mapping[str, Any]):
        raise NotImplementedError

    def as_list(self) -> List[Tuple[str, Any]]:
        raise NotImplementedError

    def close(self) -> None:
        """Free what the stages hold beyond the sessions (GPU preprocessing buffers); after the threads ended."""
