"""The model families and everything each one's bundles must obey, in one table.

A :class:`Family` holds, as data, what train, export, runtime, verify and the CLI need to agree on:
the roles of its graphs, its preprocessing, its policy settings (with one validator each), the
recurrent state that flows from a graph's outputs to the next step's inputs, which roles may be
INT8 or FP16 and why, and where its stages, exporter, verifier and demo live (module paths,
imported only when used). Plain Python only: this package runs on the device (Python 3.8).

::

    families.get("liteeval") ─► Family(roles, preprocess, settings, state, precision, stages, …)
                                  ▲ used by: export (policy, preprocessing, precision notes)
                                  │          runtime (stages, settings, contracts, gated roles)
                                  │          verify, commands (dispatch), train (preprocessing)
"""
from __future__ import annotations

from typing import Any, Dict, Tuple, Type

from ..errors import EdgevidError, ManifestError
from . import liteeval, prernn, slowfast
from .base import PRECISIONS, Family, PrecisionRule, StateLink

FAMILIES: Dict[str, Family] = {f.name: f for f in (liteeval.FAMILY, slowfast.FAMILY, prernn.FAMILY)}
NAMES: Tuple[str, ...] = tuple(FAMILIES)


def get(name: Any, error: Type[EdgevidError] = ManifestError) -> Family:
    """The family called ``name``; ``error`` (ManifestError for a bundle, ConfigError for an option) otherwise."""
    family = FAMILIES.get(name) if isinstance(name, str) else None
    if family is None:
        raise error("unknown model family %r" % (name,), "known families are " + ", ".join(NAMES),
                    "use a bundle or checkpoint of one of those families")
    return family


__all__ = ["FAMILIES", "NAMES", "PRECISIONS", "Family", "PrecisionRule", "StateLink", "get"]
