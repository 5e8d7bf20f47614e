"""Graph-contract helpers the families share: reading a role's tensor specs from a bundle's manifest."""
from __future__ import annotations

from typing import Any, Dict, Sequence, Tuple

from ..errors import ManifestError


def frame_size(bundle: Any, role: str, name: str = "frame") -> int:
    """S of a graph's square image input ``name`` [N,3,S,S] (or a clip [N,3,T,S,S]); ManifestError otherwise."""
    spec = next((t for t in bundle.graph(role).inputs if t.name == name), None)
    if spec is None or len(spec.shape) not in (4, 5) or spec.shape[-2] != spec.shape[-1]:
        raise ManifestError("graph %s of bundle %s has no square '%s' input" % (role, bundle.root, name),
                            "image inputs are [N,3,S,S] (clips [N,3,T,S,S])", "re-export the bundle")
    return int(spec.shape[-1])


def require_sizes(bundle: Any, sizes: Sequence[int], what: str) -> None:
    """ManifestError when the bundle's preprocessing does not make every size its graphs take."""
    missing = sorted(set(sizes) - set(bundle.preprocess.sizes))
    if missing:
        raise ManifestError("bundle %s preprocesses to sizes %s" % (bundle.root, list(bundle.preprocess.sizes)),
                            "%s need%s %s" % (what, "" if what.endswith("s") else "s", missing), "re-export the bundle")


def require_tensors(bundle: Any, io: Dict[str, Tuple[Sequence[str], Sequence[str]]], hint: str) -> None:
    """ManifestError naming every tensor of ``io`` (role → (inputs, outputs)) the manifest lacks."""
    for role, (inputs, outputs) in io.items():
        graph = bundle.graph(role)
        have_in = {t.name for t in graph.inputs}
        have_out = {t.name for t in graph.outputs}
        lacking = [n for n in inputs if n not in have_in] + [n for n in outputs if n not in have_out]
        if lacking:
            raise ManifestError("graph %s of bundle %s lacks tensors %s" % (role, bundle.root, ", ".join(lacking)),
                                hint, "re-export the bundle")
