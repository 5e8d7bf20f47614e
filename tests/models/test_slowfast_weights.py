"""SlowFast weight loading: PyTorchVideo parity, PySlowFast names, edgevid checkpoints, errors (docs/models.md §3.8)."""
from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")

from edgevid.errors import CheckpointError  # noqa: E402
from edgevid.models.slowfast import create_slowfast, create_slowfast_preset, slow_indices  # noqa: E402
from edgevid.models.slowfast_weights import (  # noqa: E402
    key_map, load_slowfast_checkpoint, load_slowfast_weights, save_slowfast_checkpoint,
)

SMALL = dict(stem_channels=16, width=16, alpha=4, slow_frames=4, tau=8, fusion_kernel=5)


def ptv_slowfast(**kwargs):
    ptv = pytest.importorskip("pytorchvideo.models.slowfast")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pytorchvideo's import-time torch.jit deprecation noise
        return ptv.create_slowfast(**kwargs).eval()


def ptv_small(depth=50, classes=10):
    """PyTorchVideo's SlowFast with narrow channels; head pools the whole 64² map (2×2 at res5)."""
    return ptv_slowfast(model_depth=depth, model_num_class=classes, stem_dim_outs=(16, 2),
                        slowfast_fusion_conv_kernel_size=(5, 1, 1), slowfast_fusion_conv_stride=(4, 1, 1),
                        head_pool_kernel_sizes=((4, 2, 2), (16, 2, 2)))


def randomise_bn(model, seed=0):
    """Non-trivial BN statistics, so a swapped norm layer cannot go unnoticed."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm3d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)
    return model


def test_pytorchvideo_small_gives_identical_logits(one_torch_thread):
    torch.manual_seed(0)
    ref = randomise_bn(ptv_small())
    ours = create_slowfast(num_classes=10, **SMALL).eval()
    assert load_slowfast_weights(ours, ref.state_dict()) == "pytorchvideo"
    clip = torch.randn(2, 3, 16, 64, 64)
    with torch.no_grad():
        want = ref([clip.index_select(2, slow_indices(16, 4)), clip])
        got = ours(clip)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)  # logits ~100: float32 summation order


def test_pytorchvideo_r50_8x8_gives_identical_logits_at_224():
    """The full R50 at 224², T_fast = 32: the reference's (8,7,7)/(32,7,7) head pool is a global pool here."""
    torch.manual_seed(0)
    ref = randomise_bn(ptv_slowfast(model_depth=50))
    ours = create_slowfast_preset("r50_8x8").eval()
    load_slowfast_weights(ours, ref.state_dict())
    clip = torch.randn(1, 3, 32, 224, 224)
    with torch.no_grad():
        want = ref([clip.index_select(2, torch.linspace(0, 31, 8).long()), clip])
        got = ours(clip)
    scale = want.abs().max().item()  # random weights give logits in the hundreds: compare relative to them
    assert (got - want).abs().max().item() <= 1e-5 * max(scale, 1.0)


def test_pytorchvideo_hub_r101_loads_into_the_r101_8x8_preset():
    """PyTorchVideo's ``slowfast_r101`` (the zoo's 8x8, temporal kernel in all 23 res4 blocks), random weights."""
    hub = pytest.importorskip("pytorchvideo.models.hub.slowfast")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = hub.slowfast_r101(pretrained=False)
    ours = create_slowfast_preset("r101_8x8")
    assert load_slowfast_weights(ours, ref.state_dict()) == "pytorchvideo"
    def fingerprint(model):  # every tensor by shape and value, whatever the module names
        return sorted((tuple(t.shape), round(float(t.double().sum()), 6)) for n, t in model.state_dict().items()
                      if "num_batches_tracked" not in n and "index" not in n)
    assert fingerprint(ours) == fingerprint(ref)
    with pytest.raises(CheckpointError, match="r101_8x8"):
        load_slowfast_weights(create_slowfast_preset("r101_16x8"), ref.state_dict())


def test_pyslowfast_names_load_through_the_table(one_torch_thread):
    torch.manual_seed(0)
    src = randomise_bn(create_slowfast(num_classes=10, **SMALL).eval())
    names = key_map(src, "pyslowfast")
    state = {names[k]: v for k, v in src.state_dict().items()}
    assert "s1.pathway1_stem.conv.weight" in state and "s4_fuse.conv_f2s.weight" in state
    assert "s5.pathway0_res0.branch1_bn.running_var" in state and "s3.pathway1_res3.branch2.c_bn.bias" in state
    assert "head.projection.weight" in state
    dst = create_slowfast(num_classes=10, **SMALL).eval()
    assert load_slowfast_weights(dst, {"model_state": state, "epoch": 3}) == "pyslowfast"
    clip = torch.randn(1, 3, 16, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(dst(clip), src(clip), rtol=0, atol=0)


def test_pyslowfast_names_match_pytorchvideo_one_to_one(one_torch_thread):
    model = create_slowfast(num_classes=10, **SMALL)
    ptv, psf = key_map(model, "pytorchvideo"), key_map(model, "pyslowfast")
    assert sorted(ptv.values()) == sorted(ptv_small().state_dict())
    assert len(set(psf.values())) == len(psf)


def test_wrong_depth_names_the_matching_preset(one_torch_thread):
    ours = create_slowfast(num_classes=10, **SMALL)
    with pytest.raises(CheckpointError) as e:
        load_slowfast_weights(ours, ptv_small(depth=101).state_dict())
    message = str(e.value)
    assert "unexpected keys blocks.3.multipathway_blocks" in message and "in all" in message
    assert "depth 101 (23 res4 blocks)" in message and "r101_16x8" in message


def test_wrong_class_count_is_reported_with_the_files_count(one_torch_thread):
    ours = create_slowfast(num_classes=7, **SMALL)
    with pytest.raises(CheckpointError, match=r"blocks\.6\.proj\.weight \(10, 2304\)|10 classes") as e:
        load_slowfast_weights(ours, ptv_small(classes=10).state_dict())
    assert "shape mismatches" in str(e.value) and "10 classes" in str(e.value)


def test_garbage_and_foreign_files_are_checkpoint_errors(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    model = create_slowfast_preset("tiny", num_classes=3)
    with pytest.raises(CheckpointError, match="cannot read"):
        load_slowfast_weights(model, bad)
    with pytest.raises(CheckpointError, match="not a SlowFast state dict"):
        load_slowfast_weights(model, {"conv1.weight": torch.zeros(1)})
    other = tmp_path / "resnet.pt"
    torch.save({"fc.weight": torch.zeros(2, 2)}, str(other))
    with pytest.raises(CheckpointError, match="--preset"):
        load_slowfast_checkpoint(other)


def test_edgevid_checkpoint_round_trip(tmp_path, one_torch_thread):
    torch.manual_seed(0)
    model = randomise_bn(create_slowfast_preset("tiny", num_classes=3, labels=["a", "b", "c"]).eval())
    path = save_slowfast_checkpoint(model, tmp_path / "sf.pt", extra={"epoch": 2})
    ckpt = torch.load(str(path), weights_only=True)
    assert ckpt["format"] == "edgevid.slowfast/1" and ckpt["config"]["alpha"] == 2 and ckpt["epoch"] == 2
    again, labels = load_slowfast_checkpoint(path)
    assert labels == ["a", "b", "c"] and again.config == model.config
    clip = torch.randn(1, 3, 8, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(again(clip), model(clip), rtol=0, atol=0)


def test_foreign_file_with_preset_reads_the_class_count(tmp_path, one_torch_thread):
    src = create_slowfast_preset("tiny", num_classes=6)
    state = {v: src.state_dict()[k] for k, v in key_map(src, "pytorchvideo").items()}
    torch.save(state, str(tmp_path / "ptv.pyth"))
    model, labels = load_slowfast_checkpoint(tmp_path / "ptv.pyth", preset="tiny")
    assert model.config.num_classes == 6 and labels == []
