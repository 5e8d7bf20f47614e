"""SlowFast fine-tuning: the tiny preset on generated clips, checkpoints, exact resume, foreign weights, CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("cv2")

from edgevid.errors import CheckpointError  # noqa: E402
from edgevid.models.slowfast import create_slowfast  # noqa: E402
from edgevid.models.slowfast_config import preset_config  # noqa: E402
from edgevid.models.slowfast_weights import load_slowfast_checkpoint, load_slowfast_weights, \
    save_slowfast_checkpoint  # noqa: E402

CLASSES = ["fall", "rise"]
TRAIN_FPS = 20.0  # tiny preset: stride 2 raw frames -> clips of frames 10 fps apart, the generator's rate
GEOMETRY = dict(size=32, resize_short=40, train_fps=TRAIN_FPS)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from edgevid.data.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("sfdata")
    generate_dataset(root / "train", 3, num_frames=12, fps=10.0, size=48, seed=0, classes=CLASSES)
    return root


def config(**kw):
    return preset_config("tiny", num_classes=len(CLASSES), **kw)


def folder(data):
    from edgevid.train.slowfast import slowfast_folder

    return slowfast_folder(data / "train", config(), TRAIN_FPS)


def train(data, out, epochs, **kw):
    from edgevid.train.slowfast import train_slowfast

    ds = folder(data)
    args = dict(out=out, epochs=epochs, batch_size=3, lr=3e-3, cache_dir=out.parent / "cache", seed=1, **GEOMETRY)
    args.update(kw)
    return train_slowfast(config(), ds, ds, **args)


def test_training_learns_saves_reloads_and_resumes_exactly(data, tmp_path):
    full = train(data, tmp_path / "full.pt", 4)
    losses = [h["train"]["loss"] for h in full.history]
    assert losses[-1] < losses[0], losses
    assert full.sampling == {"train_fps": 20.0, "step_fps": 10.0, "frame_stride": 2}
    assert list((tmp_path / "cache").glob("slowfast-*.pt"))  # decoded clips cached
    model, labels = load_slowfast_checkpoint(full.checkpoint)
    assert labels == CLASSES
    clip = torch.randn(2, 3, 8, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(clip), full.model(clip))
    assert torch.load(str(full.checkpoint), weights_only=True)["family"] == "slowfast"

    part = train(data, tmp_path / "part.pt", 2)
    resumed = train(data, tmp_path / "part.pt", 4, resume=tmp_path / "part.pt")
    assert part.epochs == 2 and resumed.epochs == 4
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k


def test_training_batches_use_the_runtime_preprocessing(data):
    from edgevid.families.slowfast import preprocess_spec as slowfast_preprocess_spec
    from edgevid.preprocess import Preprocessor
    from edgevid.train.slowfast import ClipBatches, prepare_clips

    spec = slowfast_preprocess_spec(32, 40)
    ds = folder(data)
    clips = prepare_clips(ds, spec, 8)
    (x, y), = list(ClipBatches(clips, spec, 8, len(ds), train=False))
    frames, label = ds[0]
    pre = Preprocessor(spec)
    start = (min(len(frames), 16) - 8) // 2  # centre window of the centre 16 cached frames
    expected = np.stack([pre(f)[32][0].copy() for f in frames[start:start + 8]], axis=1)
    assert x.shape == (len(ds), 3, 8, 32, 32) and y[0] == label
    np.testing.assert_array_equal(x[0].numpy(), expected)  # bit-identical to what the device computes
    xt, _ = next(iter(ClipBatches(clips, spec, 8, 2, train=True, seed=3)))
    assert xt.shape == (2, 3, 8, 32, 32)


def test_resume_with_another_configuration_is_refused(data, tmp_path):
    from edgevid.train.slowfast import train_slowfast

    first = train(data, tmp_path / "a.pt", 1)
    ds = folder(data)
    with pytest.raises(CheckpointError, match="another SlowFast configuration"):
        train_slowfast(preset_config("tiny", num_classes=2, stage_blocks=(2, 1, 1, 1)), ds, out=tmp_path / "b.pt",
                       epochs=2, batch_size=3, resume=first.checkpoint, **GEOMETRY)


def test_weights_of_another_depth_are_refused_another_class_count_gets_a_new_head(tmp_path):
    deeper = create_slowfast(config=config(stage_blocks=(2, 1, 1, 1)))
    save_slowfast_checkpoint(deeper, tmp_path / "deeper.pt", labels=CLASSES)
    with pytest.raises(CheckpointError, match="missing keys|unexpected keys"):
        load_slowfast_weights(create_slowfast(config=config()), tmp_path / "deeper.pt", replace_head=True)

    five = create_slowfast(config=preset_config("tiny", num_classes=5))
    save_slowfast_checkpoint(five, tmp_path / "five.pt", labels=list("abcde"))
    model = create_slowfast(config=config())
    head = model.head.proj.weight.clone()
    with pytest.raises(CheckpointError, match="shape mismatches"):
        load_slowfast_weights(model, tmp_path / "five.pt")
    load_slowfast_weights(model, tmp_path / "five.pt", replace_head=True)
    assert torch.equal(model.head.proj.weight, head)  # its own 2-class head
    assert torch.equal(model.stems[0].conv.weight, five.stems[0].conv.weight)


def test_cli_train_export_verify(data, tmp_path, capsys, edgevid_cli):
    ckpt, bundle = tmp_path / "sf.pt", tmp_path / "bundle"
    assert edgevid_cli(["train", "slowfast", "--data", str(data / "train"), "--val", str(data / "train"),
                        "--out", str(ckpt), "--preset", "tiny", "--train-fps", "20", "--size", "32",
                        "--resize-short", "40", "--epochs", "1", "--batch-size", "3", "--threads", "1"]) == 0
    assert "checkpoint: %s" % ckpt in capsys.readouterr().out
    assert edgevid_cli(["export", "slowfast", "--checkpoint", str(ckpt), "--out", str(bundle)]) == 0
    manifest = json.loads((bundle / "bundle.json").read_text())
    assert manifest["policy"]["step_fps"] == 10.0 and manifest["preprocess"]["crop"] == 32
    capsys.readouterr()
    source = "synthetic:seed=1,segments=2,frames=12,fps=10"
    assert edgevid_cli(["verify", str(bundle), "--checkpoint", str(ckpt), "--source", source,
                        "--frames", "24", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["clips"] == 3 and report["top1_agreement"] == 1.0

    # a checkpoint of another configuration: a clear error, CheckpointError's exit code, no traceback
    assert edgevid_cli(["train", "slowfast", "--data", str(data / "train"), "--out", str(tmp_path / "x.pt"),
                        "--preset", "small", "--val-split", "0.34", "--epochs", "2", "--resume", str(ckpt)]) \
        == CheckpointError.exit_code
    err = capsys.readouterr().err
    assert "another SlowFast configuration" in err and "Traceback" not in err
