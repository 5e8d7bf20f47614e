"""The fusion bundle: a folder with ``fusion.json`` that names its member bundles and holds the fusion weights.

::

    fusion.json  {"schema": "edgevid.fusion/1", "labels": [...], "flow": {method, bound, size} | null,
                  "weights": {"method": "boost-u", "theta": [...], "margin": ε, "status": ..., "fallback": null,
                              "nu": 0.5},
                  "members": [{"name": "colour", "path": "../colour", "model_sha256": "…", "family": "prernn",
                               "modality": "colour" | "flow"}, ...],
                  "held_out": {...what the weights were learned on, with each member's accuracy there}}

A member is named by the sha256 of its model (:func:`model_sha256`: its FP32 graphs' sha256s and its labels), not
of its bundle.json, so engines and INT8 graphs added to a member later (``edgevid build``, ``quantize``) keep the
fusion valid while a re-exported or retrained member does not. Loading checks every member: present (at its
recorded path relative to the fusion folder, or in the fusion folder under its name), the same model, the same
labels in the same order, and a flow member trained with the fusion's flow settings. numpy only: this runs on the
device.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

from ..bundle import MANIFEST as BUNDLE_MANIFEST
from ..bundle import Bundle, load_bundle
from ..errors import EdgevidError, ManifestError
from ..fsutil import probe
from .weights import Weights

SCHEMA = "edgevid.fusion/1"
MANIFEST = "fusion.json"
MODALITIES = ("colour", "flow")


def is_fusion_bundle(path: Union[str, Path]) -> bool:
    """Whether ``path`` is a fusion bundle folder (it holds fusion.json)."""
    return probe(Path(path) / MANIFEST)


def model_sha256(bundle: Bundle) -> str:
    """The identity of a bundle's model: sha256 over its labels and each role's FP32 graph sha256."""
    ident = {"labels": list(bundle.labels), "graphs": {role: g.sha256 for role, g in sorted(bundle.graphs.items())}}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode("utf-8")).hexdigest()


def modality(bundle: Bundle) -> str:
    return "flow" if bundle.preprocess.flow is not None else "colour"


@dataclass
class Member:
    """One member of a fusion: its name, its loaded bundle and where the fusion found it."""

    name: str
    bundle: Bundle
    path: str  # as recorded in fusion.json (relative to the fusion folder where it could be)

    @property
    def modality(self) -> str:
        return modality(self.bundle)

    def to_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "path": self.path, "model_sha256": model_sha256(self.bundle),
                "family": self.bundle.family, "modality": self.modality}


@dataclass
class FusionBundle:
    """Members, weights and the flow settings of a fusion (``root`` None: not saved, e.g. while learning)."""

    members: List[Member]
    weights: Weights
    labels: List[str]
    flow: Optional[Dict[str, Any]] = None
    root: Optional[Path] = None
    meta: Dict[str, Any] = field(default_factory=dict)

    @property
    def step_fps(self) -> Optional[float]:
        return step_fps(self.members)

    def to_dict(self) -> Dict[str, Any]:
        w = self.weights
        d = {"schema": SCHEMA, "labels": list(self.labels), "flow": self.flow,
             "weights": {"method": w.method, "theta": np.asarray(w.theta).tolist(), "margin": w.margin,
                         "status": w.status, "fallback": w.fallback, "nu": w.nu},
             "members": [m.to_dict() for m in self.members]}
        d.update(self.meta)
        return d


def check_members(members: Sequence[Member], flow: Optional[Dict[str, Any]] = None,
                  error: type = ManifestError) -> Optional[Dict[str, Any]]:
    """The members' common flow settings after checking they can be fused: two or more, distinct names, one label
    set in one order, and every flow member trained with the same flow (``flow``, when given, must be it too).
    ``error``: ManifestError for a saved fusion, ConfigError/DataError while learning one."""
    if len(members) < 2:
        raise error("a fusion of %d member(s)" % len(members), "fusion combines two or more models' scores",
                    "name two or more member bundles")
    names = [m.name for m in members]
    if len(set(names)) != len(names):
        raise error("member names %s repeat" % names, "each member is reported under its own name",
                    "give each member its own name")
    first = members[0]
    for m in members[1:]:
        if list(m.bundle.labels) != list(first.bundle.labels):
            raise error("members '%s' and '%s' have different label sets" % (first.name, m.name),
                        "%s: %s; %s: %s" % (first.name, first.bundle.labels, m.name, m.bundle.labels),
                        "fuse models trained on the same classes (one class folder layout)")
    flows = {json.dumps(m.bundle.preprocess.flow, sort_keys=True) for m in members if m.modality == "flow"}
    if len(flows) > 1:
        raise error("the flow members were trained on different flow settings: %s" % ", ".join(sorted(flows)),
                    "one stream computes one flow for all of them", "train the flow members with one --flow setting")
    step_fps(members, error)  # one stream feeds them all
    trained = json.loads(flows.pop()) if flows else None
    if flow is not None and trained is not None and dict(flow) != trained:
        raise error("flow settings %s do not match the flow members' training (%s)" % (
            json.dumps(flow, sort_keys=True), json.dumps(trained, sort_keys=True)),
            "a model sees the flow images it was trained on", "use the members' flow settings, or retrain them")
    return trained if trained is not None else (dict(flow) if flow is not None else None)


def step_fps(members: Sequence[Member], error: type = ManifestError) -> Optional[float]:
    """The rate the members step at (their policies' ``step_fps``; None: each decoded frame). A member without a
    rate takes the others'; two rates cannot be fed by one stream."""
    rates = {m.bundle.policy.get("step_fps") for m in members} - {None}
    if len(rates) > 1:
        raise error("the members step at different rates: %s" % ", ".join(
            "%s %s fps" % (m.name, m.bundle.policy.get("step_fps")) for m in members),
            "one decoded stream feeds every member at one rate", "export the members with one step_fps")
    return rates.pop() if rates else None


def load_fusion(path: Union[str, Path]) -> FusionBundle:
    """Load a fusion bundle and every member (each checked as :func:`load_bundle` does, plus the module's checks)."""
    root = Path(path)
    data = _read(root)
    labels = data.get("labels")
    raw_members = data.get("members")
    if not isinstance(labels, list) or not isinstance(raw_members, list):
        raise ManifestError("fusion bundle %s has no labels or no member list" % root, None,
                            "re-learn it with 'edgevid train fusion'")
    members = [_member(root, entry) for entry in raw_members]
    flow = check_members(members, data.get("flow"))
    if data.get("flow") != flow:
        raise ManifestError("fusion bundle %s has flow settings %r" % (root, data.get("flow")),
                            "its flow members were trained with %r" % (flow,), "re-learn it with 'edgevid train fusion'")
    if list(members[0].bundle.labels) != [str(x) for x in labels]:
        raise ManifestError("the members of %s have labels %s" % (root, members[0].bundle.labels),
                            "the fusion was learned for %s" % labels, "re-learn it with 'edgevid train fusion'")
    weights = _weights(root, data.get("weights"), len(members), len(labels))
    meta = {k: v for k, v in data.items() if k not in ("schema", "labels", "flow", "weights", "members")}
    return FusionBundle(members, weights, [str(x) for x in labels], flow, root, meta)


def _read(root: Path) -> Dict[str, Any]:
    manifest = root / MANIFEST
    if not probe(manifest):
        raise ManifestError("%s is not a fusion bundle" % root, "it has no %s" % MANIFEST,
                            "pass the folder written by 'edgevid train fusion'")
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ManifestError("cannot read %s" % manifest, str(e), "re-learn it with 'edgevid train fusion'") from e
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ManifestError("%s has schema %r" % (manifest, data.get("schema") if isinstance(data, dict) else None),
                            "this edgevid reads %s" % SCHEMA, "re-learn it with this edgevid's 'edgevid train fusion'")
    return data


def _member(root: Path, entry: Any) -> Member:
    if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in ("name", "path", "model_sha256")):
        raise ManifestError("a member entry of %s is malformed: %r" % (root / MANIFEST, entry),
                            "each member has a name, a path and a model_sha256", "re-learn it with 'edgevid train fusion'")
    name, recorded = entry["name"], entry["path"]
    where = _find(root, name, recorded)
    if where is None:
        raise ManifestError("member '%s' of fusion bundle %s is missing" % (name, root),
                            "no bundle at %s (recorded relative to the fusion folder) nor at %s" % (
                                root / recorded, root / name),
                            "copy the member bundle there (keep the folders side by side as they were)")
    try:
        bundle = load_bundle(where)
    except EdgevidError as e:
        raise ManifestError("member '%s' of fusion bundle %s cannot be loaded" % (name, root), str(e),
                            "copy the member bundle again, whole") from e
    found = model_sha256(bundle)
    if found != entry["model_sha256"]:
        raise ManifestError("member '%s' (%s) is another model than the fusion was learned with" % (name, where),
                            "its model sha256 is %s…, the fusion names %s…" % (found[:12], entry["model_sha256"][:12]),
                            "put back the bundle the weights were learned on, or re-learn them with "
                            "'edgevid train fusion'")
    return Member(name, bundle, recorded)


def _find(root: Path, name: str, recorded: str) -> Optional[Path]:
    for candidate in (root / recorded, root / name):
        if probe(candidate / BUNDLE_MANIFEST):
            return candidate
    return None


def _weights(root: Path, raw: Any, m: int, c: int) -> Weights:
    bad = ManifestError("the weights of fusion bundle %s are malformed: %r" % (root, raw),
                        "boost-u has %d non-negative weights summing to 1, boost-c %d×%d with each class's "
                        "summing to 1" % (m, m, c), "re-learn them with 'edgevid train fusion'")
    if not isinstance(raw, dict) or raw.get("method") not in ("boost-u", "boost-c"):
        raise bad
    try:
        theta = np.asarray(raw["theta"], np.float64)
    except (KeyError, TypeError, ValueError):
        raise bad from None
    shape = (m,) if raw["method"] == "boost-u" else (m, c)
    if theta.shape != shape or not np.isfinite(theta).all() or (theta < 0).any() \
            or not np.allclose(theta.sum(axis=0), 1.0, atol=1e-6):
        raise bad
    return Weights(theta, raw["method"], raw.get("margin"), str(raw.get("status", "")), raw.get("fallback"),
                   nu=raw.get("nu"))


def member_path(fusion_root: Path, member_root: Path) -> str:
    """How fusion.json records a member's folder: relative to the fusion folder (they travel together), or absolute
    when no relative path exists (another drive)."""
    try:
        return os.path.relpath(str(Path(member_root).resolve()), str(Path(fusion_root).resolve()))
    except ValueError:
        return str(Path(member_root).resolve())
