"""Bundle manifest: atomic write, validation on load, and a specific ManifestError for each fault."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from edgevid.bundle import MANIFEST, SCHEMA, Bundle, load_bundle
from edgevid.errors import ManifestError
from edgevid.fsutil import sha256_file
from edgevid.spec import GraphSpec, PreprocessSpec, TensorSpec
from tests.helpers.onnx_files import write_identity_onnx


@pytest.fixture
def bundle_dir(tmp_path):
    root = tmp_path / "b"
    root.mkdir()
    write_identity_onnx(root / "coarse_cnn.onnx")
    graph = GraphSpec("coarse_cnn", "coarse_cnn.onnx", sha256_file(root / "coarse_cnn.onnx"),
                      [TensorSpec("frame", (1, 4))], [TensorSpec("feat", (1, 4))], gmacs=0.5)
    Bundle(root, "liteeval", ["a", "b"], {"coarse_cnn": graph}, PreprocessSpec(sizes=(224, 112)),
           policy={"kind": "gated"}).save()
    return root


def edit_manifest(root, change):
    data = json.loads((root / MANIFEST).read_text())
    change(data)
    (root / MANIFEST).write_text(json.dumps(data))


def test_round_trip(bundle_dir):
    b = load_bundle(bundle_dir)
    assert b.family == "liteeval" and b.labels == ["a", "b"]
    assert b.graph("coarse_cnn").inputs == [TensorSpec("frame", (1, 4))]
    assert b.preprocess.sizes == (224, 112) and b.policy == {"kind": "gated"}
    assert json.loads((bundle_dir / MANIFEST).read_text())["schema"] == SCHEMA
    assert not [p for p in bundle_dir.iterdir() if p.name.startswith(".")], "temp files left behind"


@pytest.mark.parametrize("fault, message", [
    (lambda root: (root / "coarse_cnn.onnx").unlink(), "is missing coarse_cnn.onnx"),
    (lambda root: (root / "coarse_cnn.onnx").write_bytes(b"tampered"), "does not match its sha256"),
    (lambda root: edit_manifest(root, lambda d: d.update(schema="edgevid.bundle/99")), "schema"),
    (lambda root: edit_manifest(root, lambda d: d.update(family="resnet")), "unknown model family"),
    (lambda root: edit_manifest(root, lambda d: d["roles"]["coarse_cnn"]["artifacts"][0].update(
        file="../../etc/passwd")),
     "outside the bundle folder"),
    (lambda root: (root / MANIFEST).write_text("{not json"), "cannot be read as JSON"),
    (lambda root: (root / MANIFEST).unlink(), "has no bundle.json"),
    (lambda root: edit_manifest(root, lambda d: d["roles"]["coarse_cnn"]["artifacts"][0].pop("sha256")), "malformed"),
    (lambda root: edit_manifest(root, lambda d: d.update(labels=[])), "has no labels"),
])
def test_each_fault_is_a_specific_manifest_error(bundle_dir, fault, message):
    fault(bundle_dir)
    with pytest.raises(ManifestError, match=message):
        load_bundle(bundle_dir)


def test_missing_folder(tmp_path):
    with pytest.raises(ManifestError, match="does not exist"):
        load_bundle(tmp_path / "nope")


def test_unknown_role_names_the_roles_it_has(bundle_dir):
    with pytest.raises(ManifestError, match="has coarse_cnn"):
        load_bundle(bundle_dir).graph("fine_cnn")


def test_cli_reports_a_bad_bundle_without_traceback(bundle_dir):
    (bundle_dir / "coarse_cnn.onnx").write_bytes(b"tampered")
    result = subprocess.run([sys.executable, "-m", "edgevid", "info", str(bundle_dir)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == ManifestError.exit_code
    assert "sha256" in result.stderr and "Traceback" not in result.stderr


def test_cli_info_describes_a_good_bundle(bundle_dir):
    result = subprocess.run([sys.executable, "-m", "edgevid", "info", str(bundle_dir), "--json"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["family"] == "liteeval" and info["graphs"]["coarse_cnn"]["gmacs"] == 0.5
