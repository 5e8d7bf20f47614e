"""The bundle: a folder with ``bundle.json`` and the per-role ONNX graphs it names.

A bundle is what travels from the workstation to the device. Loading it checks the schema, that
every file is present, stays inside the folder and has the recorded sha256, so a half-copied or
edited bundle is refused before anything runs.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Union

from .errors import ManifestError
from .fsutil import sha256_file, write_json
from .spec import GraphSpec, PreprocessSpec

SCHEMA = "edgevid.bundle/1"
FAMILIES = ("liteeval", "slowfast", "prernn")
MANIFEST = "bundle.json"


@dataclass
class Bundle:
    """An exported model: graphs by role plus everything the runtime needs to use them."""

    root: Path
    family: str
    labels: List[str]
    graphs: Dict[str, GraphSpec]
    preprocess: PreprocessSpec
    policy: Dict[str, Any] = field(default_factory=dict)
    model: Dict[str, Any] = field(default_factory=dict)
    engines: List[Dict[str, Any]] = field(default_factory=list)
    meta: Dict[str, Any] = field(default_factory=dict)

    def graph(self, role: str) -> GraphSpec:
        if role not in self.graphs:
            raise ManifestError("bundle %s has no graph with role '%s'" % (self.root, role),
                                "it has " + ", ".join(sorted(self.graphs)),
                                "export the bundle for the model family that uses that role")
        return self.graphs[role]

    def graph_path(self, role: str) -> Path:
        return self.root / self.graph(role).file

    def to_dict(self) -> Dict[str, Any]:
        d = {"schema": SCHEMA, "family": self.family, "labels": list(self.labels),
             "graphs": {role: g.to_dict() for role, g in self.graphs.items()},
             "preprocess": self.preprocess.to_dict(), "policy": dict(self.policy),
             "model": dict(self.model), "engines": list(self.engines)}
        d.update(self.meta)
        return d

    def save(self) -> None:
        """Write bundle.json atomically (the graph files must already be in ``root``)."""
        meta = dict(self.meta)
        meta.setdefault("created", time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        self.meta = meta
        write_json(self.root / MANIFEST, self.to_dict())


def _inside(root: Path, rel: str) -> Path:
    """Resolve ``rel`` under ``root`` and refuse anything that escapes it (absolute paths, ``..``)."""
    path = (root / rel).resolve()
    try:
        path.relative_to(root.resolve())
    except ValueError:
        raise ManifestError("bundle.json names the file '%s' outside the bundle folder" % rel,
                            "a bundle may only refer to files inside itself",
                            "re-export the bundle; never edit paths in bundle.json by hand") from None
    return path


def _read_manifest(root: Path) -> Dict[str, Any]:
    manifest = root / MANIFEST
    if not root.is_dir():
        raise ManifestError("bundle folder %s does not exist" % root, None,
                            "pass the folder written by 'edgevid export' (or 'edgevid demo')")
    if not manifest.is_file():
        raise ManifestError("%s has no %s" % (root, MANIFEST), "it is not a complete bundle",
                            "pass the folder written by 'edgevid export', copied whole")
    try:
        data = json.loads(manifest.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ManifestError("%s cannot be read as JSON" % manifest, str(e),
                            "re-export the bundle or copy it again") from e
    if not isinstance(data, dict):
        raise ManifestError("%s is not a JSON object" % manifest, None, "re-export the bundle")
    return data


def load_bundle(path: Union[str, Path], verify: bool = True) -> Bundle:
    """Load and validate a bundle folder. ``verify=False`` skips the sha256 check (not the rest)."""
    root = Path(path)
    data = _read_manifest(root)
    schema = data.get("schema")
    if schema != SCHEMA:
        raise ManifestError("bundle %s has schema %r" % (root, schema),
                            "this edgevid reads only %s" % SCHEMA,
                            "re-export the bundle with this version of edgevid")
    family = data.get("family")
    if family not in FAMILIES:
        raise ManifestError("bundle %s has unknown model family %r" % (root, family),
                            "known families are " + ", ".join(FAMILIES), "re-export the bundle")
    raw_graphs = data.get("graphs")
    if not isinstance(raw_graphs, dict) or not raw_graphs:
        raise ManifestError("bundle %s lists no graphs" % root, None, "re-export the bundle")
    graphs = {}
    for role, raw in raw_graphs.items():
        graph = GraphSpec.from_dict(dict(raw, role=role))
        file = _inside(root, graph.file)
        if not file.is_file():
            raise ManifestError("bundle %s is missing %s (role %s)" % (root, graph.file, role),
                                "the file named in bundle.json is not there",
                                "copy the whole bundle folder again, or re-export it")
        if verify and sha256_file(file) != graph.sha256:
            raise ManifestError("%s in bundle %s does not match its sha256" % (graph.file, root),
                                "the file was changed or damaged after export",
                                "copy the bundle again, or re-export it")
        graphs[role] = graph
    labels = data.get("labels")
    if not isinstance(labels, list) or not labels:
        raise ManifestError("bundle %s has no labels" % root, None, "re-export the bundle")
    known = {"schema", "family", "labels", "graphs", "preprocess", "policy", "model", "engines"}
    return Bundle(
        root=root, family=family, labels=[str(x) for x in labels], graphs=graphs,
        preprocess=PreprocessSpec.from_dict(data.get("preprocess") or {}),
        policy=dict(data.get("policy") or {}), model=dict(data.get("model") or {}),
        engines=list(data.get("engines") or []),
        meta={k: v for k, v in data.items() if k not in known},
    )


def describe(bundle: Bundle) -> Dict[str, Any]:
    """A short JSON-able summary (family, labels, roles with I/O and GMACs) for ``info``/reports."""
    return {
        "family": bundle.family, "classes": len(bundle.labels), "root": str(bundle.root),
        "graphs": {role: {"inputs": [t.to_dict() for t in g.inputs], "outputs": [t.to_dict() for t in g.outputs],
                          "precision": g.precision, "gmacs": g.gmacs} for role, g in bundle.graphs.items()},
        "policy": bundle.policy,
    }

