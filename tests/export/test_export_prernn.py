"""PreRNN bundles: export of converted CNNs (docs/models.md §4.10), parity over 300 carried steps, the runtime on the
exported bundle against the torch model, the CLI, and bad input."""
from __future__ import annotations

import itertools
import json
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edgevid.errors import CheckpointError, ConfigError, ExportError  # noqa: E402
from edgevid.export.prernn import export_prernn, prernn_gmacs  # noqa: E402
from edgevid.models.prernn import PreRNNConfig, create_prernn  # noqa: E402

LABELS = ["wave", "walk", "jump"]
# (arch, layer, cell, form, image size): SIH-LSTM, PreRNN-GRU (gate-dependent u), VRNN, ResNet-18 layer4 SIH-LSTM
CASES = [("small_vgg", "fc6", "lstm", "sih", 32), ("small_vgg", "fc6", "gru", "prernn", 32),
         ("small_vgg", "fc6", "vrnn", "prernn", 32), ("resnet18", "layer4", "lstm", "sih", 32)]


def make_model(arch="small_vgg", layer="fc6", cell="lstm", form="sih", size=32, seed=0):
    torch.manual_seed(seed)
    config = PreRNNConfig(num_classes=3, arch=arch, layer=layer, cell=cell, form=form, image_size=size,
                          labels=list(LABELS))
    return create_prernn(config).eval(), config


@pytest.fixture(scope="module")
def stream_frames():
    """Decoded frames of a real stream: the synthetic source the device also uses."""
    from edgevid.runtime.source import open_source

    with open_source("synthetic:seed=3,segments=4,frames=10") as source:
        return [f.image for f in itertools.islice(source, 40)]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    made = {}

    def get(case):
        if case not in made:
            model, config = make_model(*case)
            out = tmp_path_factory.mktemp("prernn") / "_".join(map(str, case))
            made[case] = (model, config, export_prernn(model, out, config=config, policy={"max_steps": 10}))
        return made[case]

    return get


@pytest.mark.parametrize("case", CASES, ids=["-".join(map(str, c[:4])) for c in CASES])
def test_export_writes_the_recurrent_contract_and_passes_parity_over_300_steps(exported, stream_frames, case):
    import onnx

    from edgevid.export.onnx import op_counts
    from edgevid.verify import verify_prernn

    model, config, bundle = exported(case)
    cell, form = case[2], case[3]
    drive = "u" if form == "prernn" and cell != "vrnn" else "v"
    lstm = cell == "lstm"
    assert bundle.family == "prernn" and set(bundle.graphs) == {"backbone", "step"}
    backbone, step = bundle.graph("backbone"), bundle.graph("step")
    assert [(t.name, tuple(t.shape)) for t in backbone.inputs] == [("frame", (1, 3, case[4], case[4]))]
    assert [t.name for t in backbone.outputs] == [drive]
    assert [t.name for t in step.inputs] == [drive, "h_in"] + (["c_in"] if lstm else [])
    assert [t.name for t in step.outputs] == ["h_out"] + (["c_out"] if lstm else []) + ["logits"]
    assert bundle.policy == {"kind": "recurrent", "cell": cell, "form": form, "step_unit": "frame", "max_steps": 10,
                             "max_gap_s": 2.0, "scene_cut": None, "step_fps": None}
    assert [a.precision for a in step.all_artifacts()] == ["fp32"]
    assert step.extra["quantizable"] is False and "never INT8" in step.extra["precision_note"]
    assert step.extra["state"] == dict({"h_in": ["step.h_out"]}, **({"c_in": ["step.c_out"]} if lstm else {}))
    assert backbone.extra["quantizable"] is True
    assert bundle.preprocess.sizes == (case[4],) and bundle.model["arch"] == case[0]
    gmacs = prernn_gmacs(model, case[4])
    assert step.gmacs == pytest.approx(gmacs["step"], rel=1e-5) and backbone.gmacs == pytest.approx(gmacs["backbone"],
                                                                                                     rel=1e-5)
    assert step.gmacs * 1e9 >= model.recurrence.gates * model.hidden ** 2  # the recurrent matmul is counted
    ops = op_counts(onnx.load(str(bundle.graph_path("step"))))
    assert not set(ops) & {"LSTM", "GRU", "RNN", "Loop", "Scan", "If"}
    assert ops.get("MatMul", 0) + ops.get("Gemm", 0) >= 1

    report = verify_prernn(model, bundle, stream_frames, steps=300)
    assert report["ok"], report
    assert report["steps"] == 300 and report["stream"]["top1_agreement"] == 1.0
    assert report["stream"]["logits"]["max_abs"] < 1e-4 and report["stream"]["state"]["max_abs"] < 1e-4
    assert max(g["max_abs"] for g in report["graphs"].values()) < 1e-4


@pytest.mark.parametrize("case", CASES[:2], ids=["sih-lstm", "prernn-gru"])
def test_runtime_on_the_exported_bundle_gives_the_torch_logits(exported, case):
    from edgevid.preprocess import Preprocessor
    from edgevid.runtime.stream import StreamRuntime
    from tests.helpers.tiny_prernn import scene_frames

    model, config, bundle = exported(case)
    frames = scene_frames(60)
    rt = StreamRuntime(bundle, "ort", max_steps=1000)
    preds = list(rt.run(frames))
    pre = Preprocessor(bundle.preprocess)
    h = torch.zeros(1, model.hidden)
    c = torch.zeros(1, model.hidden) if model.has_cell_state else None
    worst = 0.0
    with torch.no_grad():
        for frame, pred in zip(frames, preds):
            x = torch.from_numpy(np.array(pre(frame.image)[config.image_size]))
            h, c, logits = model.step(model.backbone(x), h, c)
            worst = max(worst, float(np.abs(pred.logits - logits.numpy()).max()))
            assert pred.class_index == int(logits.argmax())
    assert len(preds) == 60 and rt.stats.to_dict()["resets"] == 0
    assert worst < 1e-4


def test_policy_and_label_errors(tmp_path):
    model, config = make_model()
    with pytest.raises(ConfigError, match="max_steps"):
        export_prernn(model, tmp_path / "a", config=config, policy={"max_steps": 0})
    with pytest.raises(ConfigError, match="scene_cut"):
        export_prernn(model, tmp_path / "b", config=config, policy={"scene_cut": 2.0})
    with pytest.raises(ConfigError, match="unknown policy"):
        export_prernn(model, tmp_path / "c", config=config, policy={"fine_cap": 2})
    with pytest.raises(ConfigError, match="labels"):
        export_prernn(model, tmp_path / "d", config=config, labels=["a", "b"])
    with pytest.raises(ExportError, match="PreRNNModel"):
        export_prernn(torch.nn.Linear(2, 2), tmp_path / "e", config=config)
    assert list(tmp_path.iterdir()) == []


def edgevid(*args):
    return subprocess.run([sys.executable, "-m", "edgevid"] + [str(a) for a in args], capture_output=True, text=True,
                          timeout=300)


def save_checkpoint(path, model, config, family="prernn"):
    torch.save({"family": family, "config": {"model": config.to_dict()}, "model": model.state_dict()}, str(path))
    return path


def test_cli_export_then_verify(tmp_path):
    model, config = make_model("small_vgg", "fc6", "gru", "sih", 32)
    ckpt = save_checkpoint(tmp_path / "ckpt.pt", model, config)
    out = tmp_path / "bundle"
    result = edgevid("export", "prernn", "--checkpoint", ckpt, "--out", out, "--reset-every", 16, "--scene-cut", 0.4)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "bundle.json").read_text())
    assert manifest["family"] == "prernn" and manifest["policy"]["max_steps"] == 16
    assert manifest["policy"]["scene_cut"] == 0.4 and manifest["checkpoint"]["file"] == "ckpt.pt"
    result = edgevid("verify", out, "--checkpoint", ckpt, "--frames", 300, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] and report["family"] == "prernn" and report["steps"] == 300


def test_cli_export_of_another_checkpoint_is_a_checkpoint_error(tmp_path):
    model, config = make_model()
    ckpt = save_checkpoint(tmp_path / "liteeval.pt", model, config, family="liteeval")
    out = tmp_path / "bundle"
    result = edgevid("export", "prernn", "--checkpoint", ckpt, "--out", out)
    assert result.returncode == CheckpointError.exit_code == 11
    assert "Traceback" not in result.stderr and "is an edgevid liteeval checkpoint, not a PreRNN one" in result.stderr
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["liteeval.pt"]
