"""SlowFast bundle: one ``clip`` graph with the constant-index Gather, parity torch vs ONNX Runtime."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from edgevid.bundle import load_bundle
from edgevid.errors import ConfigError, ExportError
from edgevid.export.slowfast import export_slowfast
from edgevid.models.slowfast import create_slowfast_preset, slowfast_gmacs
from edgevid.spec import KINETICS_MEAN, KINETICS_STD

LABELS = ["wave", "clap", "jump"]


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = create_slowfast_preset("tiny", num_classes=3, labels=LABELS).eval()
    with torch.no_grad():  # trained-like BN statistics
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm3d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model


@pytest.fixture(scope="module")
def bundle(tiny, tmp_path_factory):
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny model: one thread is faster and leaves the shared cores alone
    try:
        return export_slowfast(tiny, tmp_path_factory.mktemp("sf") / "bundle", size=64, checkpoint_info={"file": "x.pt"})
    finally:
        torch.set_num_threads(n)


def run_ort(path, feeds):
    ort = pytest.importorskip("onnxruntime")
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return sess.run(["logits"], feeds)[0]


def test_manifest_describes_the_clip_contract(bundle, tiny):
    b = load_bundle(bundle.root)
    assert b.family == "slowfast" and list(b.graphs) == ["clip"] and b.labels == LABELS
    g = b.graph("clip")
    assert [(t.name, t.shape) for t in g.inputs] == [("clip", (1, 3, 8, 64, 64))]
    assert [(t.name, t.shape) for t in g.outputs] == [("logits", (1, 3))]
    assert g.gmacs == pytest.approx(slowfast_gmacs(tiny.config, 64), rel=1e-5)
    assert g.extra["slow_indices"] == [0, 2, 4, 7]
    assert b.policy == {"kind": "clip", "frames": 8, "frame_stride": 2, "train_fps": 30.0, "step_fps": 15.0}
    p = b.preprocess
    assert (p.resize_short, p.crop, p.sizes, p.mean, p.std, p.color) == (256, 64, (64,), KINETICS_MEAN, KINETICS_STD, "RGB")
    assert b.model["alpha"] == 2 and b.model["slow_frames"] == 4 and b.meta["checkpoint"] == {"file": "x.pt"}


def test_graph_gathers_the_linspace_indices(bundle):
    graph = onnx.load(str(bundle.graph_path("clip"))).graph
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    gathers = [n for n in graph.node if n.op_type == "Gather"]
    assert len(gathers) == 1 and gathers[0].input[0] == "clip"
    assert [a.i for a in gathers[0].attribute if a.name == "axis"] == [2]
    assert consts[gathers[0].input[1]].tolist() == [0, 2, 4, 7]


def test_parity_torch_vs_onnxruntime(bundle, tiny, one_torch_thread):
    clip = torch.randn(1, 3, 8, 64, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        want = tiny(clip).numpy()
    got = run_ort(bundle.graph_path("clip"), {"clip": clip.numpy()})
    assert np.abs(got - want).max() < 1e-4


def test_two_input_export(tiny, tmp_path, one_torch_thread):
    b = export_slowfast(tiny, tmp_path / "two", size=32, two_input=True)
    g = b.graph("clip")
    assert [(t.name, t.shape) for t in g.inputs] == [("slow", (1, 3, 4, 32, 32)), ("fast", (1, 3, 8, 32, 32))]
    clip = torch.randn(1, 3, 8, 32, 32)
    slow = clip[:, :, [0, 2, 4, 7]]
    with torch.no_grad():
        want = tiny(clip).numpy()
    got = run_ort(b.graph_path("clip"), {"slow": slow.numpy(), "fast": clip.numpy()})
    assert np.abs(got - want).max() < 1e-4 and b.model["input"] == "two_input"


def test_refusals(tiny, tmp_path):
    with pytest.raises(ConfigError, match="multiple of 32"):
        export_slowfast(tiny, tmp_path / "a", size=100)
    with pytest.raises(ConfigError, match="2 labels"):
        export_slowfast(tiny, tmp_path / "b", size=32, labels=["x", "y"])
    with pytest.raises(ConfigError, match="static clip length"):
        export_slowfast(tiny, tmp_path / "c", size=32, policy={"frames": 16})
    with pytest.raises(ExportError, match="needs a SlowFast"):
        export_slowfast(torch.nn.Linear(2, 2), tmp_path / "d")
    assert not any(tmp_path.iterdir())  # nothing half-written


def test_cli_export_edgevid_and_foreign_checkpoints(tiny, tmp_path, capsys, edgevid_cli):
    from edgevid.models.slowfast_weights import key_map, save_slowfast_checkpoint

    save_slowfast_checkpoint(tiny, tmp_path / "sf.pt")
    assert edgevid_cli(["export", "slowfast", "--checkpoint", str(tmp_path / "sf.pt"), "--out", str(tmp_path / "b1"),
                 "--size", "32"]) == 0
    b1 = load_bundle(tmp_path / "b1")
    assert b1.labels == LABELS and b1.graph("clip").inputs[0].shape == (1, 3, 8, 32, 32)

    torch.save({v: tiny.state_dict()[k] for k, v in key_map(tiny, "pytorchvideo").items()}, str(tmp_path / "ptv.pyth"))
    foreign = ["export", "slowfast", "--checkpoint", str(tmp_path / "ptv.pyth"), "--out", str(tmp_path / "b2"),
               "--size", "32"]
    assert edgevid_cli(foreign) == 11 and "--preset" in capsys.readouterr().err
    assert edgevid_cli(foreign + ["--preset", "tiny"]) == 2 and "--labels FILE with 3 lines" in capsys.readouterr().err
    (tmp_path / "labels.txt").write_text("x\ny\nz\n")
    assert edgevid_cli(foreign + ["--preset", "tiny", "--labels", str(tmp_path / "labels.txt"), "--two-input"]) == 0
    b2 = load_bundle(tmp_path / "b2")
    assert b2.labels == ["x", "y", "z"] and [t.name for t in b2.graph("clip").inputs] == ["slow", "fast"]
    assert b2.meta["checkpoint"]["preset"] == "tiny"
