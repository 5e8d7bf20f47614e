"""Per-frame pre-training of the CNN PreRNN converts (edgevid.train.frames), and the bad inputs of that path."""
import subprocess
import sys

import pytest
import torch

from edgevid.errors import CheckpointError, ConfigError
from edgevid.models.prernn import PreRNNConfig, build_cnn, small_vgg
from edgevid.train.frames import frame_dataset, train_frame_classifier
from edgevid.train.prernn import load_prernn_checkpoint, train_prernn


def test_frame_classifier_learns_and_its_weights_convert(tmp_path, fake_videos, caplog):
    import logging

    videos = fake_videos(n=8, lengths=[4] * 8, seed=1)
    x, y = frame_dataset(videos, 32, every=2)
    assert x.shape == (16, 3, 32, 32) and y.tolist() == [i % 2 for i in range(8) for _ in range(2)]
    with caplog.at_level(logging.INFO, logger="edgevid"):
        result = train_frame_classifier(small_vgg(2), videos, videos, image_size=32,
                                        weights_out=tmp_path / "cnn.pth", epochs=15, batch_size=8, lr=3e-3, threads=1)
    assert result.val_accuracy == 1.0 and result.frames == 32
    summary = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("frame classifier:"))
    assert "val accuracy 100.0%" in summary, summary  # a percentage, not a raw float
    config = PreRNNConfig(num_classes=2, arch="small_vgg", layer="fc6", image_size=32)
    model = train_prernn(config, videos, out=tmp_path / "m.pt", epochs=1, batch_size=4, weights=result.weights).model
    # the pretrained convolutions are the frozen trunk; fc6 became the SIH drive W_xy (fine-tuned one epoch)
    torch.testing.assert_close(model.trunk.features[0].weight, result.model.features[0].weight)
    torch.testing.assert_close(model.drive.weight, result.model.classifier[0].weight, atol=1e-2, rtol=0)


def test_frame_classifier_refuses_a_cnn_with_other_classes(tmp_path, fake_videos):
    with pytest.raises(ConfigError, match="num_classes=2"):
        train_frame_classifier(small_vgg(5), fake_videos(), image_size=32, weights_out=tmp_path / "w.pth", epochs=1)
    assert not (tmp_path / "w.pth").exists()


def test_weights_of_another_architecture_are_refused(tmp_path, fake_videos):
    path = tmp_path / "vgg.pth"
    torch.save(small_vgg(2).state_dict(), str(path))
    config = PreRNNConfig(num_classes=2, arch="resnet18", layer="layer4", image_size=32)
    with pytest.raises(CheckpointError, match="do not fit"):
        train_prernn(config, fake_videos(), out=tmp_path / "m.pt", epochs=1, batch_size=2, weights=path)
    assert not (tmp_path / "m.pt").exists()
    with pytest.raises(CheckpointError, match="do not fit"):
        build_cnn("vgg11", 2, weights=path)


def test_checkpoint_whose_state_is_of_another_architecture(tmp_path):
    torch.manual_seed(0)
    from edgevid.models.prernn import create_prernn

    vgg = PreRNNConfig(num_classes=2, arch="small_vgg", layer="fc6", image_size=32)
    resnet = PreRNNConfig(num_classes=2, arch="resnet18", layer="layer4", image_size=32)
    path = tmp_path / "mixed.pt"
    torch.save({"family": "prernn", "config": {"model": resnet.to_dict()},
                "model": create_prernn(vgg).state_dict()}, str(path))
    with pytest.raises(CheckpointError, match="missing|unexpected"):
        load_prernn_checkpoint(path)
    bad = tmp_path / "bad_config.pt"
    torch.save({"family": "prernn", "config": {"model": dict(vgg.to_dict(), arch="alexnet")}, "model": {}}, str(bad))
    with pytest.raises(CheckpointError, match="unusable"):
        load_prernn_checkpoint(bad)


def test_cli_train_with_weights_of_another_architecture(tmp_path):
    from edgevid.data.synthetic import CLASSES, generate_dataset

    generate_dataset(tmp_path / "data", videos_per_class=1, num_frames=2, size=32, classes=CLASSES[:2], seed=0)
    weights = tmp_path / "vgg.pth"
    torch.save(small_vgg(2).state_dict(), str(weights))
    result = subprocess.run([sys.executable, "-m", "edgevid", "train", "prernn", "--data", str(tmp_path / "data"),
                             "--val", str(tmp_path / "data"), "--out", str(tmp_path / "m.pt"), "--arch", "resnet18",
                             "--layer", "layer4", "--weights", str(weights), "--image-size", "32", "--frames", "2",
                             "--epochs", "1"], capture_output=True, text=True, timeout=120)
    assert result.returncode == CheckpointError.exit_code == 11
    assert "Traceback" not in result.stderr and "do not fit" in result.stderr
    assert not (tmp_path / "m.pt").exists()
