"""Schema 2: typed artifacts per role, schema-1 bundles still load and run, artifacts added atomically,
the manifest's I/O checked against the graph at activation, sessions opened for a role at a precision.

Device-side: numpy, onnxruntime and OpenCV only (the fixtures are committed ONNX files, no torch)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgevid import families
from edgevid.bundle import MANIFEST, SCHEMA, SCHEMA_1, Bundle, load_bundle
from edgevid.errors import ConfigError, ManifestError

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "schema1"
QUANT = {"quantization": {"method": "test", "per_channel": True}}


@pytest.fixture
def schema1(tmp_path):
    """A copy of a schema-1 bundle written by the schema-1 exporter (tests/fixtures/schema1/<family>)."""
    def copy(family: str) -> Path:
        root = tmp_path / family
        shutil.copytree(str(FIXTURES / family), str(root))
        return root
    return copy


@pytest.mark.parametrize("family", families.NAMES)
def test_schema1_bundles_load_with_their_graph_as_the_fp32_artifact(family):
    bundle = load_bundle(FIXTURES / family)
    assert bundle.schema == SCHEMA_1 and bundle.family == family
    assert set(bundle.graphs) == set(families.get(family).roles)
    for role, graph in bundle.graphs.items():
        assert [(a.kind, a.precision, a.file) for a in graph.all_artifacts()] == [("onnx", "fp32", role + ".onnx")]
    families.get(family).contract(bundle)  # the graph contract of today's runtime holds for them


def test_saving_a_schema1_bundle_writes_schema2_that_reads_back_the_same(schema1):
    root = schema1("liteeval")
    before = load_bundle(root)
    before.save()
    data = json.loads((root / MANIFEST).read_text())
    assert data["schema"] == SCHEMA and "graphs" not in data and set(data["roles"]) == set(before.graphs)
    after = load_bundle(root)
    assert after.schema == SCHEMA
    for role in before.graphs:
        a, b = before.graph(role), after.graph(role)
        assert (a.file, a.sha256, a.inputs, a.outputs, a.gmacs) == (b.file, b.sha256, b.inputs, b.outputs, b.gmacs)
    assert after.policy == before.policy and after.preprocess == before.preprocess


@pytest.mark.parametrize("family, paths", [("liteeval", {"fine", "coarse"}), ("prernn", {"step"}),
                                           ("slowfast", {"clip", "held"})])
def test_schema1_bundles_stream(family, paths):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("cv2")
    from edgevid.runtime import StreamRuntime
    from edgevid.runtime.source import Frame

    rng = np.random.default_rng(0)
    frames = [Frame(i, i / 10.0, rng.integers(0, 255, (48, 64, 3), dtype=np.uint8), 0.0) for i in range(24)]
    with StreamRuntime(load_bundle(FIXTURES / family), pipelined=False) as runtime:
        preds = list(runtime.run(frames))
    stats = runtime.stats.to_dict()
    assert preds and {p.path for p in preds} <= paths and all(p.label in runtime.bundle.labels for p in preds)
    assert [p.frame_index for p in preds] == sorted(p.frame_index for p in preds)
    # what actually ran, never the requested "auto"
    role = families.get(family).roles[0]
    assert stats["sessions"][role] == {"backend": "ort", "precision": "fp32", "artifact": role + ".onnx"}
    assert set(stats["sessions"]) == set(families.get(family).roles)


def write_bytes(data: bytes):
    return lambda path: path.write_bytes(data)


def test_add_artifact_enters_file_and_entry_together(schema1):
    root = schema1("prernn")
    bundle = load_bundle(root)
    art = bundle.add_artifact("backbone", "calibration", "backbone.calib.npz", write_bytes(b"feeds"),
                              info={"recipe": "r.json", "data_sha256": "ab" * 32, "frames": 3})
    assert (root / "backbone.calib.npz").read_bytes() == b"feeds"
    again = load_bundle(root)
    assert again.schema == SCHEMA
    assert again.graph("backbone").find("calibration") == [art]
    (root / "backbone.calib.npz").write_bytes(b"changed")
    with pytest.raises(ManifestError, match="backbone.calib.npz .*does not match its sha256"):
        load_bundle(root)


def test_a_failed_write_leaves_the_bundle_as_it_was(schema1):
    root = schema1("prernn")
    manifest = (root / MANIFEST).read_bytes()
    files = sorted(p.name for p in root.iterdir())

    def fails(path):
        path.write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        load_bundle(root).add_artifact("backbone", "calibration", "b.npz", fails,
                                       info={"recipe": "r", "data_sha256": "0" * 64})
    assert (root / MANIFEST).read_bytes() == manifest and sorted(p.name for p in root.iterdir()) == files


def test_a_failed_manifest_write_removes_the_new_file_and_restores_the_old(schema1):
    root = schema1("prernn")
    bundle = load_bundle(root)
    info = {"recipe": "r", "data_sha256": "0" * 64}
    bundle.add_artifact("step", "calibration", "s.npz", write_bytes(b"old"), info=info)
    files = sorted(p.name for p in root.iterdir())
    manifest = (root / MANIFEST).read_bytes()

    class Unsavable(Bundle):
        def save(self):
            raise OSError("read-only file system")

    broken = Unsavable(**{k: getattr(bundle, k) for k in bundle.__dataclass_fields__})
    with pytest.raises(OSError, match="read-only"):
        broken.add_artifact("step", "calibration", "s.npz", write_bytes(b"new"), info=info)
    with pytest.raises(OSError, match="read-only"):
        broken.add_artifact("step", "calibration", "t.npz", write_bytes(b"other"), info=info)
    assert (root / "s.npz").read_bytes() == b"old"
    assert sorted(p.name for p in root.iterdir()) == files and (root / MANIFEST).read_bytes() == manifest
    assert [a.file for a in broken.graph("step").artifacts] == ["s.npz"]
    load_bundle(root)


@pytest.mark.parametrize("kind, precision, info, message", [
    ("engine", "fp16", {"trt_version": "8.5.2"}, "lacks sm, dla_core, workspace_mib, source_sha256"),
    ("onnx", "int8", {}, "lacks quantization"),
    ("calibration", None, {"recipe": "r"}, "lacks data_sha256"),
    ("weights", None, {}, "unknown kind"),
    ("onnx", "int4", {}, "unknown precision"),
])
def test_artifacts_without_their_provenance_are_refused(schema1, kind, precision, info, message):
    root = schema1("slowfast")
    with pytest.raises(ManifestError, match=message):
        load_bundle(root).add_artifact("clip", kind, "x.bin", write_bytes(b"x"), precision=precision, info=info)
    assert not (root / "x.bin").exists()
    data = json.loads((root / MANIFEST).read_text())
    data["schema"] = SCHEMA
    data["roles"] = {"clip": dict(data.pop("graphs")["clip"])}
    entry = data["roles"]["clip"]
    entry["artifacts"] = [{"kind": "onnx", "precision": "fp32", "file": entry.pop("file"), "sha256": entry.pop("sha256")},
                          {"kind": kind, "precision": precision, "file": "clip.onnx", "sha256": "0", "info": info}]
    (root / MANIFEST).write_text(json.dumps(data))
    with pytest.raises(ManifestError, match=message):  # the same rule when bundle.json is edited by hand
        load_bundle(root, verify=False)


def test_artifact_names_cannot_collide_or_escape(schema1):
    bundle = load_bundle(schema1("liteeval"))
    info = {"recipe": "r", "data_sha256": "0" * 64}
    with pytest.raises(ManifestError, match="another entry"):
        bundle.add_artifact("coarse_step", "calibration", "fine_step.onnx", write_bytes(b"x"), info=info)
    with pytest.raises(ManifestError, match="outside the bundle folder"):
        bundle.add_artifact("coarse_step", "calibration", "../x.npz", write_bytes(b"x"), info=info)
    with pytest.raises(ManifestError, match="the bundle's own"):
        bundle.add_artifact("coarse_step", "calibration", MANIFEST, write_bytes(b"x"), info=info)


def test_declared_io_that_differs_from_the_graph_is_refused_at_activation(schema1):
    pytest.importorskip("onnxruntime")
    from edgevid.backends import open_role

    root = schema1("prernn")
    data = json.loads((root / MANIFEST).read_text())
    data["graphs"]["step"]["inputs"][1]["shape"] = [1, 99]  # h_in: the graph says [1, 8]
    (root / MANIFEST).write_text(json.dumps(data))
    session = open_role(load_bundle(root), "step", "ort")
    with pytest.raises(ManifestError, match="declares input 'h_in' of step as \\[1, 99\\]"):
        session.activate()
    assert not session.active
    data["graphs"]["step"]["inputs"][1]["shape"] = [1, 8]
    data["graphs"]["step"]["outputs"][0]["name"] = "state"
    (root / MANIFEST).write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="declares outputs"):
        open_role(load_bundle(root), "step", "ort").activate()


def test_the_registry_picks_the_artifact_for_the_precision(schema1):
    pytest.importorskip("onnxruntime")
    from edgevid.backends import open_role

    root = schema1("prernn")
    bundle = load_bundle(root)
    with pytest.raises(ConfigError, match="role step of a prernn bundle cannot run at int8.*never INT8"):
        open_role(bundle, "step", "ort", "int8")
    with pytest.raises(ManifestError, match="no int8 onnx artifact for role backbone.*onnx fp32"):
        open_role(bundle, "backbone", "ort", "int8")
    # an INT8 entry (here the FP32 graph's bytes stand in for a Q/DQ graph: what is tested is the choice)
    graph = (root / "backbone.onnx").read_bytes()
    bundle.add_artifact("backbone", "onnx", "backbone.int8.onnx", write_bytes(graph), precision="int8", info=QUANT)
    with open_role(load_bundle(root), "backbone", "ort", "int8") as session:
        assert session.describe() == {"backend": "ort", "precision": "int8", "artifact": "backbone.int8.onnx"}
        assert [t.name for t in session.inputs] == ["frame"]
    with open_role(load_bundle(root), "backbone", "auto") as session:
        assert session.describe()["precision"] == "fp32" and session.backend == "ort"


def test_an_unknown_family_is_an_error_everywhere(schema1):
    root = schema1("slowfast")
    data = json.loads((root / MANIFEST).read_text())
    data["family"] = "resnet"
    (root / MANIFEST).write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="unknown model family 'resnet'"):
        load_bundle(root)
    with pytest.raises(ConfigError, match="unknown model family 'resnet'"):
        families.get("resnet", ConfigError)
    from edgevid.demo import family_demo
    with pytest.raises(ConfigError, match="unknown model family"):
        family_demo("resnet")


def test_add_artifacts_is_all_or_nothing_and_files_get_the_umask_mode(schema1):
    import os
    import stat

    from edgevid.bundle import NewArtifact

    root = schema1("prernn")
    bundle = load_bundle(root)
    info = {"recipe": "r", "data_sha256": "0" * 64}
    manifest = (root / MANIFEST).read_bytes()

    def fails(path):
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        bundle.add_artifacts([NewArtifact("backbone", "calibration", "calibration/backbone.npz", write_bytes(b"a"),
                                          info=info),
                              NewArtifact("step", "calibration", "calibration/step.npz", fails, info=info)])
    assert (root / MANIFEST).read_bytes() == manifest
    assert not list((root / "calibration").iterdir()) and not bundle.graph("backbone").artifacts
    old = os.umask(0o022)
    try:
        added = bundle.add_artifacts([NewArtifact(role, "calibration", "calibration/%s.npz" % role, write_bytes(b"x"),
                                                  info=info) for role in ("backbone", "step")])
    finally:
        os.umask(old)
    assert [a.file for a in added] == ["calibration/backbone.npz", "calibration/step.npz"]
    assert stat.S_IMODE((root / "calibration" / "step.npz").stat().st_mode) == 0o644
    assert {r: [a.file for a in g.artifacts] for r, g in load_bundle(root).graphs.items()} == {
        "backbone": ["calibration/backbone.npz"], "step": ["calibration/step.npz"]}


def test_among_int8_graphs_the_one_made_for_the_backend_wins(schema1):
    pytest.importorskip("onnxruntime")
    from edgevid.backends import open_role

    root = schema1("prernn")
    graph = (root / "backbone.onnx").read_bytes()
    bundle = load_bundle(root)
    for target in ("trt", "cpu"):
        bundle.add_artifact("backbone", "onnx", "backbone.int8.%s.onnx" % target, write_bytes(graph), precision="int8",
                            info=dict(QUANT, target=target))
    session = open_role(load_bundle(root), "backbone", "ort", "int8")  # ONNX Runtime's fast form is the CPU one
    assert session.describe()["artifact"] == "backbone.int8.cpu.onnx"
