"""SlowFast model: slow-frame sampling, published parameter and GMAC counts, forward contract (docs/models.md §3)."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from edgevid.errors import ConfigError  # noqa: E402
from edgevid.models.slowfast import (  # noqa: E402
    count_parameters, create_slowfast, create_slowfast_preset, describe_preset, slow_indices, slowfast_gmacs,
)
from edgevid.models.slowfast_config import SlowFastConfig, preset_config  # noqa: E402

# docs/models.md §3.3
TABLES = [
    (32, 4, [0, 4, 8, 13, 17, 22, 26, 31]),
    (32, 8, [0, 10, 20, 31]),
    (64, 4, [0, 4, 8, 12, 16, 21, 25, 29, 33, 37, 42, 46, 50, 54, 58, 63]),
]


@pytest.mark.parametrize("t_fast, alpha, expected", TABLES)
def test_slow_indices_are_the_reference_linspace_tables(t_fast, alpha, expected):
    assert slow_indices(t_fast, alpha).tolist() == expected
    assert expected != list(range(0, t_fast, alpha))  # not "every α-th frame"


# (preset, params with 400 classes, GMACs @256², GMACs @224²) — docs/models.md §3.1, §3.6
PUBLISHED = [("r50_8x8", 34_566_488, 65.71, 50.3), ("r50_4x16", 34_480_216, 36.10, 27.6),
             ("r101_16x8", 53_774_808, 213.0, 163.1)]


@pytest.mark.parametrize("name, params, g256, g224", PUBLISHED)
def test_published_parameters_and_gmacs(name, params, g256, g224):
    info = describe_preset(name, num_classes=400, size=256)
    assert info["params"] == params
    assert round(info["gmacs"], 2 if name.startswith("r50") else 1) == g256
    assert round(slowfast_gmacs(preset_config(name), 224), 1) == g224


def test_r101_uses_the_temporal_kernel_in_the_first_six_res4_blocks_only():
    with torch.device("meta"):
        model = create_slowfast_preset("r101_16x8")
    kernels = [block.conv_a.kernel_size[0] for block in model.stages[2][0]]
    assert kernels == [3] * 6 + [1] * 17
    assert [b.conv_a.kernel_size[0] for b in model.stages[1][1]] == [3] * 4  # fast res3: all temporal


def test_meta_count_equals_a_real_forward_count(one_torch_thread):
    from edgevid.models.macs import count_macs

    config = preset_config("tiny", num_classes=5)
    model = create_slowfast(config=config).eval()
    real = count_macs(model, torch.zeros(1, 3, config.fast_frames, 64, 64)) / 1e9
    assert slowfast_gmacs(config, 64) == pytest.approx(real, rel=1e-12)


def test_forward_gathers_the_slow_frames_itself(one_torch_thread):
    torch.manual_seed(0)
    model = create_slowfast_preset("tiny", num_classes=5).eval()
    clip = torch.randn(2, 3, model.config.fast_frames, 48, 48)
    with torch.no_grad():
        logits = model(clip)
        pair = model([clip[:, :, [0, 2, 4, 7]], clip])
    assert logits.shape == (2, 5)
    assert model.slow_index.tolist() == [0, 2, 4, 7]
    torch.testing.assert_close(logits, pair, rtol=0, atol=0)
    assert "slow_index" not in model.state_dict()


@pytest.mark.parametrize("frames", [7, 16])
def test_wrong_clip_length_is_a_config_error(frames, one_torch_thread):
    model = create_slowfast_preset("tiny", num_classes=5).eval()
    with pytest.raises(ConfigError, match=r"\[N, 3, 8, H, W\]"):
        model(torch.zeros(1, 3, frames, 32, 32))
    with pytest.raises(ConfigError, match="slow"):
        model([torch.zeros(1, 3, 3, 32, 32), torch.zeros(1, 3, 8, 32, 32)])


def test_tiny_preset_trains_a_step_on_cpu(one_torch_thread):
    torch.manual_seed(0)
    model = create_slowfast_preset("tiny", num_classes=3).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    clip, target = torch.randn(4, 3, 8, 32, 32), torch.tensor([0, 1, 2, 0])
    losses = []
    for _ in range(3):
        loss = torch.nn.functional.cross_entropy(model(clip), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert count_parameters(model) < 60_000


def test_config_round_trips_through_a_dict_and_refuses_bad_values():
    config = preset_config("r101_16x8", num_classes=10)
    again = SlowFastConfig.from_dict(dict(config.to_dict(), stage_blocks=None))
    assert again == config and again.blocks == (3, 4, 23, 3) and again.frame_stride == 2
    with pytest.raises(ConfigError, match="presets are"):
        preset_config("r50_9x9")
    with pytest.raises(ConfigError, match="depth"):
        SlowFastConfig(depth=34)
    with pytest.raises(ConfigError, match="odd"):
        SlowFastConfig(fusion_kernel=4)
    with pytest.raises(ConfigError, match="unknown SlowFast settings"):
        SlowFastConfig.from_dict({"num_layers": 3})
