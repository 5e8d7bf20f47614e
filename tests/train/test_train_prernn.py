"""PreRNN training on generated class-folder video: loss falls, checkpoint reloads (weights_only), resume."""
import pytest
import torch

from edgevid.data.folder import VideoFolder
from edgevid.data.synthetic import CLASSES, generate_dataset
from edgevid.errors import CheckpointError
from edgevid.models.prernn import PreRNNConfig
from edgevid.train.prernn import load_prernn_checkpoint, train_prernn


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    pytest.importorskip("cv2")
    root = tmp_path_factory.mktemp("prernn") / "data"
    generate_dataset(root, videos_per_class=4, num_frames=4, size=32, classes=CLASSES[:2], seed=3)
    return VideoFolder(root, num_frames=4)


@pytest.mark.parametrize("cell,form", [("lstm", "sih"), ("gru", "traditional")])
def test_train_loss_falls_and_checkpoint_reloads(videos, tmp_path, cell, form):
    config = PreRNNConfig(num_classes=2, arch="small_vgg", layer="fc6", cell=cell, form=form, image_size=32)
    out = tmp_path / "m.pt"
    result = train_prernn(config, videos, videos, out=out, epochs=8, batch_size=4, lr=1e-2,
                          cache_dir=tmp_path / "cache")
    losses = [h["val"]["loss"] for h in result.history]   # eval mode: deterministic (no dropout)
    assert losses[-1] < losses[0], losses
    ckpt = torch.load(str(out), map_location="cpu", weights_only=True)
    assert ckpt["family"] == "prernn" and ckpt["labels"] == list(videos.classes)
    model, cfg = load_prernn_checkpoint(out)
    assert cfg.form == form and model.info["form"] == form
    frames = torch.randn(1, 2, 3, 32, 32)
    torch.testing.assert_close(model(frames)["logits"], result.model(frames)["logits"])
    assert list((tmp_path / "cache").glob("prernn-*.pt"))


def test_resume_continues_and_wrong_family_is_refused(videos, tmp_path):
    config = PreRNNConfig(num_classes=2, arch="small_vgg", layer="fc7", cell="vrnn", form="prernn", image_size=32)
    out = tmp_path / "m.pt"
    train_prernn(config, videos, out=out, epochs=1, batch_size=4, lr=1e-3)
    again = train_prernn(config, videos, out=out, epochs=2, batch_size=4, lr=1e-3, resume=out)
    assert again.epochs == 2 and len(again.history) == 2
    bad = tmp_path / "other.pt"
    torch.save({"family": "liteeval", "config": {"model": {}}, "model": {}}, str(bad))
    with pytest.raises(CheckpointError, match="is an edgevid liteeval checkpoint, not a PreRNN one"):
        load_prernn_checkpoint(bad)
    other = PreRNNConfig(num_classes=2, arch="small_vgg", layer="fc6", cell="vrnn", form="prernn", image_size=32)
    with pytest.raises(CheckpointError, match="another model configuration"):
        train_prernn(other, videos, out=tmp_path / "x.pt", epochs=3, batch_size=4, resume=out)


def test_cli_train_then_analyze_saturation(videos, tmp_path, capsys):
    from edgevid.cli import main

    ckpt = tmp_path / "gru.pt"
    assert main(["train", "prernn", "--data", str(videos.root), "--out", str(ckpt), "--frames", "4",
                 "--arch", "small_vgg", "--layer", "fc6", "--cell", "gru", "--form", "sih", "--image-size", "32",
                 "--epochs", "2", "--batch-size", "4", "--lr", "1e-3", "--val-split", "0.25"]) == 0
    assert "checkpoint:" in capsys.readouterr().out
    out = tmp_path / "sat"
    assert main(["analyze-saturation", "--checkpoint", str(ckpt), "--data", str(videos.root), "--out", str(out),
                 "--frames", "4"]) == 0
    assert "recurrence (gru):" in capsys.readouterr().out
    assert (out / "saturation.json").is_file() and (out / "saturation.png").is_file()
    assert main(["analyze-saturation", "--checkpoint", str(tmp_path / "missing.pt"), "--data", str(videos.root),
                 "--out", str(out)]) == CheckpointError.exit_code
