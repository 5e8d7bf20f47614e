"""Untrusted files are never executed or handed to a runtime unchecked: a checkpoint that would run code when
unpickled is refused (weights_only), an engine whose bytes changed after `edgevid build` recorded them is refused
at bundle load, before TensorRT could deserialize it, and a bundle.json naming files outside the bundle (``..``,
an absolute path, a symlink out) is refused."""
from __future__ import annotations

import json
import os

import pytest

from edgevid.backends.engines import Device, engine_file, engine_info
from edgevid.bundle import NewArtifact, load_bundle
from edgevid.errors import CheckpointError, ManifestError
from tests.helpers.bundles import LITEEVAL, copy_bundle

MARKER = "edgevid-untrusted-ran"


class Payload:
    """Unpickling this runs code: what a malicious checkpoint carries."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_a_checkpoint_that_would_run_code_is_refused_and_the_code_never_runs(tmp_path):
    torch = pytest.importorskip("torch")
    from edgevid.models.checkpoint import open_checkpoint

    path, marker = tmp_path / "evil.pt", tmp_path / MARKER
    torch.save({"format": "edgevid.train/1", "family": "liteeval", "model": Payload(str(marker))}, str(path))
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        open_checkpoint(path)
    assert not marker.exists()


def test_an_engine_changed_after_it_was_recorded_is_refused_before_tensorrt_sees_it(tmp_path):
    bundle = load_bundle(copy_bundle(LITEEVAL["mixed"], tmp_path / "b"))
    device = Device(trt_version="10.3.0", sm="87")
    name = engine_file("coarse_cnn", "fp16", device)
    info = engine_info(device, dla_core=None, workspace_mib=0, source_sha256="x")
    bundle.add_artifacts([NewArtifact("coarse_cnn", "engine", name, lambda p: p.write_bytes(b"plan"), "fp16", info)])
    load_bundle(bundle.root)  # as recorded: fine
    (bundle.root / name).write_bytes(b"another plan")
    with pytest.raises(ManifestError, match="%s in bundle .* does not match its sha256" % name):
        load_bundle(bundle.root)


@pytest.mark.parametrize("file", ["../coarse_cnn.onnx", "/etc/passwd", "link.onnx"])
def test_files_outside_the_bundle_are_refused(tmp_path, file):
    root = copy_bundle(LITEEVAL["mixed"], tmp_path / "b")
    (tmp_path / "coarse_cnn.onnx").write_bytes((root / "coarse_cnn.onnx").read_bytes())
    os.symlink(str(tmp_path / "coarse_cnn.onnx"), str(root / "link.onnx"))
    manifest = json.loads((root / "bundle.json").read_text())
    manifest["roles"]["coarse_cnn"]["artifacts"][0]["file"] = file
    (root / "bundle.json").write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match="outside the bundle folder"):
        load_bundle(root)
