"""export_bundle: manifest round trip, atomic writes, refusing to clobber, policy and labels."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import onnx
import torch
import pytest
from tests.helpers.export_helpers import small_model

import edgevid
import edgevid.export.bundle as export_bundle_module
from edgevid.bundle import load_bundle
from edgevid.errors import ConfigError, ExportError, ManifestError
from edgevid.export import POLICY_DEFAULTS, export_bundle
from edgevid.spec import IMAGENET_MEAN, IMAGENET_STD

ROOT = Path(__file__).resolve().parents[2]
CONTRACT_NAMES = {"frame", "feat", "feat_c", "feat_f", "v_c", "h_c_in", "c_c_in", "h_f_in", "c_f_in", "h_c_out", "c_c_out",
                  "gate_logits", "h_f_sync", "c_f_sync", "logits_sync", "h_f_out", "c_f_out", "logits"}


def test_round_trip(model, bundle):
    loaded = load_bundle(bundle.root)  # validates schema, presence and sha256
    assert loaded.family == "liteeval" and loaded.labels == ["a", "b", "c", "d", "e"]
    assert list(loaded.graphs) == ["coarse_step", "fine_step", "coarse_cnn", "fine_cnn"]
    assert {p.name for p in bundle.root.iterdir()} == {"bundle.json", "coarse_cnn.onnx", "fine_cnn.onnx",
                                                       "coarse_step.onnx", "fine_step.onnx"}
    pre = loaded.preprocess
    assert (pre.resize_short, pre.crop, pre.sizes) == (256, 224, (224, 112))
    assert pre.mean == IMAGENET_MEAN and pre.std == IMAGENET_STD
    assert loaded.policy == POLICY_DEFAULTS
    for role, g in loaded.graphs.items():
        assert [(a.kind, a.precision, a.file) for a in g.all_artifacts()] == [("onnx", "fp32", role + ".onnx")]
        assert g.gmacs and g.gmacs > 0
        assert g.extra["quantizable"] is role.endswith("_cnn")  # from the family's precision rules
        assert "never INT8" in g.extra["precision_note"] or role.endswith("_cnn")
    assert loaded.graph("coarse_step").extra["state"] == {
        "h_c_in": ["coarse_step.h_c_out"], "c_c_in": ["coarse_step.c_c_out"],
        "h_f_in": ["fine_step.h_f_out", "coarse_step.h_f_sync"], "c_f_in": ["fine_step.c_f_out", "coarse_step.c_f_sync"]}
    assert loaded.graph("fine_step").extra["state"]["h_f_in"] == ["fine_step.h_f_out", "coarse_step.h_f_sync"]
    cfg = model.config.to_dict()
    assert {k: loaded.model[k] for k in cfg} == cfg
    assert loaded.meta["checkpoint"] == {"path": "ckpt.pt", "epoch": 3}
    assert loaded.meta["exporter"]["opset"] == 17


def test_no_generated_names_anywhere(bundle):
    data = json.loads((bundle.root / "bundle.json").read_text())
    for role, g in data["roles"].items():
        names = [t["name"] for t in g["inputs"] + g["outputs"]]
        assert set(names) <= CONTRACT_NAMES, role
        m = onnx.load(str(bundle.root / g["artifacts"][0]["file"]))
        inits = {t.name for t in m.graph.initializer}
        onnx_names = [v.name for v in m.graph.input if v.name not in inits] + [v.name for v in m.graph.output]
        assert onnx_names == names
        assert not any(re.search(r"^input\.|^onnx::|^\d+$|^/", n) for n in onnx_names)


def test_tampered_graph_is_refused_on_load(model, tmp_path):
    out = tmp_path / "b"
    export_bundle(model, out, labels=None)
    path = out / "fine_step.onnx"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ManifestError, match="sha256"):
        load_bundle(out)


def test_existing_folder_is_refused_unless_overwrite(model, tmp_path):
    out = tmp_path / "b"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ExportError, match="already exists"):
        export_bundle(model, out, labels=None)
    with pytest.raises(ExportError, match="holds no bundle.json"):  # overwrite never deletes a non-bundle folder
        export_bundle(model, out, labels=None, overwrite=True)
    assert (out / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_overwrite_replaces_a_previous_bundle(model, tmp_path):
    out = tmp_path / "b"
    export_bundle(model, out, labels=None, policy={"max_steps": 64})
    b = export_bundle(model, out, labels=None, overwrite=True)
    assert b.policy["max_steps"] == 129 and load_bundle(out).policy["max_steps"] == 129
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


@pytest.mark.parametrize("overwrite", [False, True])
def test_failure_mid_export_leaves_nothing(model, tmp_path, monkeypatch, overwrite):
    """A CNN export failing after the step graphs were written: no out_dir, no temp folder, old bundle intact."""
    out = tmp_path / "b"
    if overwrite:
        export_bundle(model, out, labels=None)
        before = (out / "bundle.json").read_text()
    real = export_bundle_module.export_onnx
    done = []

    def flaky(module, example_inputs, output_names, path, **kw):
        if kw.get("role") == "fine_cnn":
            assert sorted(p.name for p in path.parent.iterdir()) == ["coarse_cnn.onnx", "coarse_step.onnx",
                                                                    "fine_step.onnx"]
            raise ExportError("simulated failure in the fine CNN export")
        done.append(kw.get("role"))
        return real(module, example_inputs, output_names, path, **kw)

    monkeypatch.setattr(export_bundle_module, "export_onnx", flaky)
    with pytest.raises(ExportError, match="simulated"):
        export_bundle(model, out, labels=None, overwrite=overwrite)
    assert done == ["coarse_step", "fine_step", "coarse_cnn"]
    if overwrite:
        assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]
        assert (out / "bundle.json").read_text() == before
        load_bundle(out)
    else:
        assert list(tmp_path.iterdir()) == []


def test_policy_is_merged_and_checked(model, tmp_path):
    b = export_bundle(model, tmp_path / "b", labels=None, policy={"max_steps": 64, "step_fps": 1.0})
    assert b.policy == dict(POLICY_DEFAULTS, max_steps=64, step_fps=1.0)
    for bad, match in (({"max_step": 3}, "unknown policy"), ({"max_steps": 0}, "max_steps"),
                       ({"max_gap_s": -1}, "max_gap_s")):
        with pytest.raises(ConfigError, match=match):
            export_bundle(model, tmp_path / "c", labels=None, policy=bad)
    assert not (tmp_path / "c").exists()


def test_labels_must_fit_the_classes(model, tmp_path):
    with pytest.raises(ConfigError, match="3 labels for a model with 5 classes"):
        export_bundle(model, tmp_path / "b", labels=["x", "y", "z"])
    unlabeled = small_model(seed=3, labels=[])
    with pytest.raises(ConfigError, match="no class labels"):
        export_bundle(unlabeled, tmp_path / "b", labels=None)
    b = export_bundle(unlabeled, tmp_path / "b", labels=["v", "w", "x", "y", "z"])
    assert b.labels == ["v", "w", "x", "y", "z"] and b.model["labels"] == b.labels


def test_refuses_models_that_are_not_liteeval(tmp_path):
    with pytest.raises(ExportError, match="needs a LiteEval"):
        export_bundle(torch.nn.Linear(2, 2), tmp_path / "b", labels=["a", "b"])


def test_public_name_is_lazy():
    """``import edgevid`` loads neither the export package nor torch; the first use of ``edgevid.export_bundle``
    does, and gives the exporter itself (in a fresh interpreter: this one imported both long ago)."""
    code = ("import sys, edgevid\n"
            "loaded = lambda: [m in sys.modules for m in ('edgevid.export', 'torch')]\n"
            "before = loaded()\n"
            "exporter = edgevid.export_bundle\n"
            "after = loaded()\n"
            "from edgevid.export.bundle import export_bundle\n"
            "print(before, after, exporter is export_bundle)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=str(ROOT), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[False, False] [True, True] True"
    assert edgevid.export_bundle is export_bundle


def test_export_leaves_the_model_as_it_was(tmp_path):
    """Export runs in eval mode but restores every submodule's training flag and changes no weight."""
    model = small_model(seed=4).train()
    model.fine_cnn.bn.eval()  # a mixed state must survive too
    flags = {name: m.training for name, m in model.named_modules()}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    export_bundle(model, tmp_path / "b", labels=None)
    assert {name: m.training for name, m in model.named_modules()} == flags
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k


def test_each_graph_is_hashed_once_per_export(model, tmp_path, monkeypatch):
    import edgevid.bundle as bundle_module
    import edgevid.export.bundle as export_module

    hashed = []
    real = export_module.sha256_file

    def counting(path, *args):
        hashed.append(Path(path).name)
        return real(path, *args)

    monkeypatch.setattr(export_module, "sha256_file", counting)
    monkeypatch.setattr(bundle_module, "sha256_file", counting)
    export_bundle(model, tmp_path / "b", labels=None)
    assert sorted(hashed) == sorted(role + ".onnx" for role in ("coarse_cnn", "fine_cnn", "coarse_step", "fine_step"))
