"""The contract between StreamRuntime and a model family's stages, and helpers every family shares.

A family's stages class (LiteEval ``gated.GatedStages``, SlowFast ``clip.ClipStages``, PreRNN
``recurrent.RecurrentStages``) has:

- ``ROLES``: the bundle graphs it needs (one session each, activated by the runtime);
- ``OPTIONS``: the names of the policy options it takes (StreamRuntime keyword arguments);
- ``check(bundle, options)`` (classmethod): validates bundle and options before any session opens,
  raising ManifestError / ConfigError, and returns the options to construct with;
- ``__init__(bundle, sessions, stats, **options)`` and ``as_list()``: ``[(name, fn), …]`` stage
  functions, each called by one thread at a time. The first takes a source Frame; the last returns
  ``(Prediction, captured)`` or ``None`` when this frame yields no prediction (e.g. a clip window that
  is not full yet): the pipeline passes nothing on for ``None``.

``FAMILY_STAGES`` maps a bundle family to the module and class of its stages, imported on first use.
"""
from __future__ import annotations

import importlib
from typing import Any, Dict, Mapping, Tuple

from ..bundle import Bundle
from ..errors import ConfigError, ManifestError

FAMILY_STAGES: Dict[str, Tuple[str, str]] = {
    "liteeval": ("edgevid.runtime.gated", "GatedStages"),
    "prernn": ("edgevid.runtime.recurrent", "RecurrentStages"),
    "slowfast": ("edgevid.runtime.clip", "ClipStages"),
}


def stages_for(bundle: Bundle) -> Any:
    """The stages class of the bundle's family; ConfigError for a family without one."""
    entry = FAMILY_STAGES.get(bundle.family)
    if entry is None:
        raise ConfigError("StreamRuntime cannot run a %s bundle" % bundle.family,
                          "streaming is built for %s" % ", ".join(sorted(FAMILY_STAGES)),
                          "use a bundle of one of those families")
    module, name = entry
    return getattr(importlib.import_module(module), name)


def check_known_options(stages: Any, options: Mapping[str, Any]) -> None:
    """ConfigError for an option the family does not take (e.g. fine_cap on a SlowFast bundle)."""
    unknown = sorted(set(options) - set(stages.OPTIONS))
    if unknown:
        raise ConfigError("option %s does not apply to a %s stream" % (", ".join(unknown), stages.__name__),
                          "it takes %s" % (", ".join(stages.OPTIONS) or "no options"), "leave it out")


def frame_size(bundle: Bundle, role: str, name: str = "frame") -> int:
    """S of a graph's square image input ``name`` [N,3,S,S] (or a clip [N,3,T,S,S]); ManifestError otherwise."""
    spec = next((t for t in bundle.graph(role).inputs if t.name == name), None)
    if spec is None or len(spec.shape) not in (4, 5) or spec.shape[-2] != spec.shape[-1]:
        raise ManifestError("graph %s of bundle %s has no square '%s' input" % (role, bundle.root, name),
                            "image inputs are [N,3,S,S] (clips [N,3,T,S,S])", "re-export the bundle")
    return int(spec.shape[-1])
