"""The bundle: a folder with ``bundle.json`` and the files of each role it names.

A bundle is what travels from the workstation to the device. Loading it checks the schema, that
every file is present, stays inside the folder and has the recorded sha256, so a half-copied or
edited bundle is refused before anything runs.

Schema 2 (written by this edgevid) lists per role typed **artifacts** (spec.Artifact): the FP32
ONNX graph every role has, and Q/DQ INT8 or FP16 graphs, calibration feeds and caches, and engines
with their provenance as later steps add them. Schema-1 bundles (one ONNX file per role) still load.
See docs/bundle.md.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from . import families
from .errors import ManifestError
from .fsutil import probe, public_mode, sha256_file, write_json
from .spec import Artifact, GraphSpec, PreprocessSpec

SCHEMA = "edgevid.bundle/2"
SCHEMA_1 = "edgevid.bundle/1"
MANIFEST = "bundle.json"
_KNOWN = {"schema", "family", "labels", "graphs", "roles", "preprocess", "policy", "model", "engines"}


@dataclass(frozen=True)
class NewArtifact:
    """An artifact to add: its role, kind and file, ``write(path)`` that writes its content, its precision and
    provenance (spec.ARTIFACT_KINDS says what each kind must record)."""

    role: str
    kind: str
    file: str
    write: Callable[[Path], None]
    precision: Optional[str] = None
    info: Optional[Dict[str, Any]] = None


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
    meta: Dict[str, Any] = field(default_factory=dict)
    schema: str = SCHEMA  # the schema it was read in (saving always writes the current one)

    def graph(self, role: str) -> GraphSpec:
        if role not in self.graphs:
            raise ManifestError("bundle %s has no graph with role '%s'" % (self.root, role),
                                "it has " + ", ".join(sorted(self.graphs)),
                                "export the bundle for the model family that uses that role")
        return self.graphs[role]

    def graph_path(self, role: str) -> Path:
        return self.root / self.graph(role).file

    def path(self, artifact: Artifact) -> Path:
        return self.root / artifact.file

    @property
    def rules(self) -> "families.Family":
        """The family's rules (roles, settings, precision, contracts)."""
        return families.get(self.family)

    def to_dict(self) -> Dict[str, Any]:
        d = {"schema": SCHEMA, "family": self.family, "labels": list(self.labels),
             "roles": {role: g.to_dict() for role, g in self.graphs.items()},
             "preprocess": self.preprocess.to_dict(), "policy": dict(self.policy), "model": dict(self.model)}
        d.update(self.meta)
        return d

    def save(self) -> None:
        """Write bundle.json atomically (the files it names must already be in ``root``)."""
        meta = dict(self.meta)
        meta.setdefault("created", time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        self.meta = meta
        write_json(self.root / MANIFEST, self.to_dict())

    def add_artifact(self, role: str, kind: str, file: str, write: Callable[[Path], None], *,
                     precision: Optional[str] = None, info: Optional[Dict[str, Any]] = None) -> Artifact:
        """Add one artifact to ``role``: ``write(path)`` writes its content to a temporary path in the bundle,
        which is renamed to ``file`` and entered in a rewritten bundle.json (atomic), or removed again.

        An artifact of the same file name is replaced. A failure at any point leaves the bundle as it
        was: never a file without its entry, never an entry without its file.
        """
        return self.add_artifacts([NewArtifact(role, kind, file, write, precision, info)])[0]

    def add_artifacts(self, new: Sequence["NewArtifact"]) -> List[Artifact]:
        """Add several artifacts (e.g. one calibration file per role) with one rewrite of bundle.json: all of them
        or, when anything fails, none (files written so far are removed, files they replaced put back)."""
        self._check_new(new)
        before = {role: list(g.artifacts) for role, g in self.graphs.items()}
        placed: List[Tuple[Path, Optional[Path]]] = []  # (target, backup of what it replaced)
        added: List[Artifact] = []
        try:
            for item in new:
                artifact, target, backup = self._place(item)
                placed.append((target, backup))
                graph = self.graphs[item.role]
                graph.artifacts = [a for a in graph.artifacts if a.file != item.file] + [artifact]
                added.append(artifact)
            self.save()
        except BaseException:
            for role, artifacts in before.items():
                self.graphs[role].artifacts = artifacts
            for target, backup in reversed(placed):
                target.unlink()
                if backup is not None:
                    os.replace(str(backup), str(target))
            raise
        for _, backup in placed:
            if backup is not None:
                backup.unlink()
        return added

    def _check_new(self, new: Sequence["NewArtifact"]) -> None:
        names = [item.file for item in new]
        if len(set(names)) != len(names):
            raise ManifestError("artifacts %s are named twice" % sorted({n for n in names if names.count(n) > 1}),
                                "each file of a bundle has one entry", "give each artifact its own file name")
        for item in new:
            graph = self.graph(item.role)
            if _inside(self.root, item.file).name == MANIFEST or item.file == graph.file:
                raise ManifestError("cannot add an artifact named %s" % item.file, "that file is the bundle's own",
                                    "choose another file name")
            taken = {a.file for g in self.graphs.values() for a in g.all_artifacts()} - {a.file for a in graph.artifacts}
            if item.file in taken:
                raise ManifestError("cannot add an artifact named %s to role %s" % (item.file, item.role),
                                    "another entry of the bundle already uses that file", "choose another file name")

    def _place(self, item: "NewArtifact") -> Tuple[Artifact, Path, Optional[Path]]:
        """Write one artifact beside its target and rename it into place; returns it, the target and the backup of
        the file it replaced (None). On failure nothing of it is left."""
        target = _inside(self.root, item.file)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="." + target.name + ".", suffix=".tmp", dir=str(target.parent))
        os.close(fd)
        tmp = Path(name)
        try:
            item.write(tmp)
            artifact = Artifact(item.kind, item.file, sha256_file(tmp), item.precision, dict(item.info or {}))
            artifact.check()
            public_mode(tmp)  # mkstemp's 0600 would make the bundle unreadable for another user
            backup = None
            if target.exists():  # the old content stays until the new entry is written
                backup = target.with_name("." + target.name + ".previous")
                os.replace(str(target), str(backup))
            os.replace(str(tmp), str(target))
        finally:
            if tmp.exists():
                tmp.unlink()
        return artifact, target, backup


def _inside(root: Path, rel: str) -> Path:
    """Resolve ``rel`` under ``root`` and refuse anything that escapes it (absolute paths, ``..``)."""
    try:
        path = (root / rel).resolve()
    except (OSError, ValueError, RuntimeError) as e:  # a NUL byte, a symlink loop, a name the OS refuses
        raise ManifestError("bundle.json names the file %r, which cannot be looked up" % (rel,), str(e),
                            "re-export the bundle; never edit paths in bundle.json by hand") from None
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
    """Load and validate a bundle folder (schema 2, or 1 as older edgevid wrote it).

    Every artifact must be present inside the folder and, unless ``verify=False``, match its sha256.
    """
    root = Path(path)
    data = _read_manifest(root)
    schema = data.get("schema")
    if schema not in (SCHEMA, SCHEMA_1):
        raise ManifestError("bundle %s has schema %r" % (root, schema),
                            "this edgevid reads %s and %s" % (SCHEMA, SCHEMA_1),
                            "re-export the bundle with this version of edgevid, or use the edgevid that wrote it")
    family = families.get(data.get("family"))
    raw = data.get("roles") if schema == SCHEMA else data.get("graphs")
    if not isinstance(raw, dict) or not raw:
        raise ManifestError("bundle %s lists no graphs" % root, None, "re-export the bundle")
    read = GraphSpec.from_dict if schema == SCHEMA else GraphSpec.from_schema1
    graphs = {}
    for role, entry in raw.items():
        if not isinstance(entry, dict):
            raise ManifestError("the entry of role %s in %s is not an object" % (role, root), None, "re-export the bundle")
        graph = read(str(role), entry)
        for artifact in graph.all_artifacts():
            _check_file(root, role, artifact, verify)
        graphs[str(role)] = graph
    labels = data.get("labels")
    if not isinstance(labels, list) or not labels:
        raise ManifestError("bundle %s has no labels" % root, None, "re-export the bundle")
    for key in ("policy", "model", "preprocess"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            raise ManifestError("%s of bundle %s is a %s" % (key, root, type(data[key]).__name__),
                                "it must be a JSON object", "re-export the bundle")
    return Bundle(
        root=root, family=family.name, labels=[str(x) for x in labels], graphs=graphs,
        preprocess=PreprocessSpec.from_dict(data.get("preprocess") or {}),
        policy=dict(data.get("policy") or {}), model=dict(data.get("model") or {}),
        meta={k: v for k, v in data.items() if k not in _KNOWN}, schema=schema,
    )


def _check_file(root: Path, role: str, artifact: Artifact, verify: bool) -> None:
    file = _inside(root, artifact.file)
    if not probe(file, "file"):
        raise ManifestError("bundle %s is missing %s (role %s)" % (root, artifact.file, role),
                            "the file named in bundle.json is not there",
                            "copy the whole bundle folder again, or re-export it")
    if verify and sha256_file(file) != artifact.sha256:
        raise ManifestError("%s in bundle %s does not match its sha256" % (artifact.file, root),
                            "the file was changed or damaged after it was written",
                            "copy the bundle again, or re-export it")
    if verify and artifact.kind == "onnx":
        _check_self_contained(root, artifact.file, file)


def _check_self_contained(root: Path, name: str, file: Path) -> None:
    """Refuse an ONNX graph that keeps tensor data in other files: no sha256 covers them, and a location may point
    anywhere (``../…``, ``/dev/…``); edgevid's graphs never have any."""
    from .onnxfile import WireError, external_data

    try:
        found = external_data(file)
    except WireError as e:
        raise ManifestError("%s in bundle %s is not an ONNX file" % (name, root), str(e),
                            "re-export the bundle") from None
    if found:
        tensor, location = found[0]
        raise ManifestError("%s in bundle %s keeps the data of %d tensor(s) in other files (%s: '%s')"
                            % (name, root, len(found), tensor, location),
                            "a bundle's graphs carry their weights themselves; external files are not verified",
                            "re-export the bundle (edgevid export writes self-contained graphs)")


def describe(bundle: Bundle) -> Dict[str, Any]:
    """A short JSON-able summary (family, labels, roles with I/O, GMACs, artifacts and precision rules)."""
    rules = bundle.rules
    return {
        "family": bundle.family, "schema": bundle.schema, "classes": len(bundle.labels), "root": str(bundle.root),
        "graphs": {role: {"inputs": [t.to_dict() for t in g.inputs], "outputs": [t.to_dict() for t in g.outputs],
                          "gmacs": g.gmacs, "artifacts": [a.to_dict() for a in g.all_artifacts()],
                          "precision_rule": rules.precision_notes().get(role)}
                   for role, g in bundle.graphs.items()},
        "policy": bundle.policy,
    }
