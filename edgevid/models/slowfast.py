"""SlowFast (docs/models.md §3; Feichtenhofer et al. 2019) built from small parts, PyTorchVideo style.

::

    clip [N,3,αT,H,W] (fast frames) ──┬──────────────────────────────► fast [N,3,αT,H,W]
                                      └─ index_select(T, slow_index) ─► slow [N,3,T,H,W]
                                         (slow_index = linspace(0, αT-1, T).long(), a constant buffer)

    slow ─► stem(1×7², C)  ─► ⊕ ─► res2 ─► ⊕ ─► res3 ─► ⊕ ─► res4 ─► ⊕ ─► res5 ─► avgpool ─┐
                              ▲           ▲           ▲           ▲                        concat ─► dropout ─► Linear ─► logits
    fast ─► stem(5×7², βC) ───┴─► res2 ───┴─► res3 ───┴─► res4 ───┴─► res5 ──────► avgpool ─┘
             ⊕ = concat([slow, ReLU(BN(Conv3d(βC→2βC, [k,1,1], stride [α,1,1])(fast)))], channels)

Each res stage is a sequence of bottlenecks (conv a kt×1×1 → conv b 1×3×3 with the spatial stride →
conv c 1×1×1, plus a projection shortcut in the first block). Temporal kernels: slow only in res4 and
res5, fast everywhere (docs/models.md §3.2). The module tree maps one-to-one onto the PyTorchVideo and
PySlowFast layouts (see :mod:`edgevid.models.slowfast_weights`). ``forward`` takes ONE clip tensor and
gathers the slow frames itself, so the exported graph has one input (role ``clip``, docs/models.md §3.5).
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from ..errors import ConfigError
from .macs import count_macs
from .slowfast_config import PRESETS, SlowFastConfig, preset_config

__all__ = ["SlowFast", "SlowFastConfig", "PRESETS", "create_slowfast", "create_slowfast_preset", "slow_indices",
           "count_parameters", "slowfast_gmacs", "describe_preset"]

Clip = Union[torch.Tensor, Sequence[torch.Tensor]]


def slow_indices(t_fast: int, alpha: int) -> torch.Tensor:
    """Fast-frame indices of the slow pathway: ``linspace(0, t_fast-1, t_fast//alpha)`` (float32) truncated.

    Exactly the reference sampling (docs/models.md §3.3): for 32/4 it is [0, 4, 8, 13, 17, 22, 26, 31],
    not every α-th frame.
    """
    return torch.linspace(0, t_fast - 1, t_fast // alpha, dtype=torch.float32).long()


# ---------------------------------------------------------------------------------------------
# Parts
def _bn(channels: int) -> nn.BatchNorm3d:
    return nn.BatchNorm3d(channels, eps=1e-5, momentum=0.1)


class Stem(nn.Module):
    """conv kt×7×7 stride (1,2,2) → BN → ReLU → max-pool 1×3×3 stride (1,2,2)."""

    def __init__(self, dim_in: int, dim_out: int, kt: int):
        super().__init__()
        self.conv = nn.Conv3d(dim_in, dim_out, (kt, 7, 7), stride=(1, 2, 2), padding=(kt // 2, 3, 3), bias=False)
        self.bn = _bn(dim_out)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))

    def forward(self, x):
        return self.pool(self.relu(self.bn(self.conv(x))))


class Bottleneck(nn.Module):
    """conv a kt×1×1 → conv b 1×3×3 (spatial stride) → conv c 1×1×1, each with BN; + shortcut; ReLU."""

    def __init__(self, dim_in: int, dim_inner: int, dim_out: int, kt: int, stride: int):
        super().__init__()
        if dim_in != dim_out or stride != 1:
            self.shortcut_conv = nn.Conv3d(dim_in, dim_out, 1, stride=(1, stride, stride), bias=False)
            self.shortcut_bn = _bn(dim_out)
        else:
            self.shortcut_conv = self.shortcut_bn = None
        self.conv_a = nn.Conv3d(dim_in, dim_inner, (kt, 1, 1), padding=(kt // 2, 0, 0), bias=False)
        self.bn_a = _bn(dim_inner)
        self.conv_b = nn.Conv3d(dim_inner, dim_inner, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1),
                                bias=False)
        self.bn_b = _bn(dim_inner)
        self.conv_c = nn.Conv3d(dim_inner, dim_out, 1, bias=False)
        self.bn_c = _bn(dim_out)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        shortcut = x if self.shortcut_conv is None else self.shortcut_bn(self.shortcut_conv(x))
        y = self.relu(self.bn_a(self.conv_a(x)))
        y = self.relu(self.bn_b(self.conv_b(y)))
        return self.relu(self.bn_c(self.conv_c(y)) + shortcut)


class Fusion(nn.Module):
    """Lateral connection fast → slow: Conv3d(βC → rβC, [k,1,1], stride [α,1,1]) → BN → ReLU, concatenated."""

    def __init__(self, dim_fast: int, ratio: int, kernel: int, alpha: int):
        super().__init__()
        self.conv = nn.Conv3d(dim_fast, dim_fast * ratio, (kernel, 1, 1), stride=(alpha, 1, 1),
                              padding=(kernel // 2, 0, 0), bias=False)
        self.bn = _bn(dim_fast * ratio)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: List[torch.Tensor]) -> List[torch.Tensor]:
        slow, fast = x
        return [torch.cat([slow, self.relu(self.bn(self.conv(fast)))], dim=1), fast]


class Head(nn.Module):
    """Global average pool per pathway → concat → dropout → Linear (softmax is the SDK's job)."""

    def __init__(self, dim_in: int, num_classes: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(dim_in, num_classes)

    def forward(self, x: List[torch.Tensor]) -> torch.Tensor:
        # mean over T, H, W exports as ReduceMean; equal to the reference's fixed-kernel pool at 224²
        pooled = torch.cat([p.mean(dim=(2, 3, 4)) for p in x], dim=1)
        return self.proj(self.dropout(pooled))


def create_stem(*, dim_in: int, dim_out: int, kt: int) -> Stem:
    return Stem(dim_in, dim_out, kt)


def create_bottleneck(*, dim_in: int, dim_inner: int, dim_out: int, kt: int, stride: int) -> Bottleneck:
    return Bottleneck(dim_in, dim_inner, dim_out, kt, stride)


def create_stage(*, dim_in: int, dim_inner: int, dim_out: int, blocks: int, kt: int,
                 temporal_blocks: Optional[int], stride: int) -> nn.Sequential:
    """``blocks`` bottlenecks; the first ``temporal_blocks`` (None: all) use ``kt``, the rest 1."""
    limit = blocks if temporal_blocks is None else temporal_blocks
    return nn.Sequential(*[create_bottleneck(dim_in=dim_in if i == 0 else dim_out, dim_inner=dim_inner,
                                             dim_out=dim_out, kt=kt if i < limit else 1,
                                             stride=stride if i == 0 else 1) for i in range(blocks)])


def create_fusion(*, dim_fast: int, ratio: int, kernel: int, alpha: int) -> Fusion:
    return Fusion(dim_fast, ratio, kernel, alpha)


def create_head(*, dim_in: int, num_classes: int, dropout: float) -> Head:
    return Head(dim_in, num_classes, dropout)


# ---------------------------------------------------------------------------------------------
class SlowFast(nn.Module):
    """Wires the parts it is given. Build it with :func:`create_slowfast` or :func:`create_slowfast_preset`."""

    def __init__(self, config: SlowFastConfig, stems: nn.ModuleList, fusions: nn.ModuleList,
                 stages: nn.ModuleList, head: Head):
        super().__init__()
        self.config = config
        self.stems, self.fusions, self.stages, self.head = stems, fusions, stages, head
        # not persistent: derived from the config, so checkpoints of other layouts map one-to-one
        self.register_buffer("slow_index", slow_indices(config.fast_frames, config.alpha), persistent=False)

    def forward(self, clip: Clip) -> torch.Tensor:
        """``clip`` [N,3,αT,H,W] (fast frames; slow ones are gathered here) or a ``[slow, fast]`` pair."""
        x = list(self._pathways(clip))
        x = [stem(p) for stem, p in zip(self.stems, x)]
        for fusion, stage in zip(self.fusions, self.stages):
            x = fusion(x)
            x = [stage[p](x[p]) for p in range(2)]
        return self.head(x)

    def _pathways(self, clip: Clip) -> Tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        if isinstance(clip, (list, tuple)):
            if len(clip) != 2:
                raise ConfigError("SlowFast got %d pathway tensors" % len(clip), "it takes [slow, fast]",
                                  "pass one clip tensor or a [slow, fast] pair")
            slow, fast = clip
            _check_frames("slow", slow, c.slow_frames)
            _check_frames("fast", fast, c.fast_frames)
            return slow, fast
        _check_frames("clip", clip, c.fast_frames)
        return torch.index_select(clip, 2, self.slow_index), clip


def _check_frames(name: str, x: torch.Tensor, frames: int) -> None:
    # a wrong clip length would otherwise surface as a cryptic concat error inside the first fusion;
    # under tracing (ONNX export) the example inputs come from the config and shapes are static
    if torch.jit.is_tracing():
        return
    if not isinstance(x, torch.Tensor) or x.dim() != 5 or x.shape[1] != 3 or x.shape[2] != frames:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ConfigError("SlowFast input '%s' has shape %s" % (name, shape),
                          "it must be [N, 3, %d, H, W] (RGB, %d frames)" % (frames, frames),
                          "sample %d frames per clip as the model config says" % frames)


def create_slowfast(*, config: Optional[SlowFastConfig] = None, **settings) -> SlowFast:
    """Assemble a SlowFast from ``config`` or from :class:`SlowFastConfig` keyword settings."""
    if config is None:
        config = SlowFastConfig(**settings)
    elif settings:
        raise ConfigError("create_slowfast got both config and settings %s" % sorted(settings), None,
                          "pass either a SlowFastConfig or keyword settings")
    c = config
    fast_stem = c.stem_channels // c.beta_inv
    stems = nn.ModuleList([create_stem(dim_in=3, dim_out=c.stem_channels, kt=1),
                           create_stem(dim_in=3, dim_out=fast_stem, kt=c.fast_stem_temporal_kernel)])
    fusions, stages = nn.ModuleList(), nn.ModuleList()
    slow_out, fast_out = c.stem_channels, fast_stem
    limits = c.temporal_kernel_blocks or (None,) * 4
    for s, blocks in enumerate(c.blocks):
        fusions.append(create_fusion(dim_fast=fast_out, ratio=c.fusion_channel_ratio, kernel=c.fusion_kernel,
                                     alpha=c.alpha))
        slow_in, fast_in = slow_out + c.fusion_channel_ratio * fast_out, fast_out
        inner = c.width * 2 ** s
        slow_out, fast_out = 4 * inner, 4 * inner // c.beta_inv
        stride = 1 if s == 0 else 2
        stages.append(nn.ModuleList([
            create_stage(dim_in=slow_in, dim_inner=inner, dim_out=slow_out, blocks=blocks,
                         kt=c.slow_temporal_kernels[s], temporal_blocks=limits[s], stride=stride),
            create_stage(dim_in=fast_in, dim_inner=inner // c.beta_inv, dim_out=fast_out, blocks=blocks,
                         kt=c.fast_temporal_kernels[s], temporal_blocks=limits[s], stride=stride)]))
    head = create_head(dim_in=slow_out + fast_out, num_classes=c.num_classes, dropout=c.dropout)
    return SlowFast(config, stems, fusions, stages, head)


def create_slowfast_preset(name: str, num_classes: int = 400, **overrides) -> SlowFast:
    """A SlowFast of a named preset (:data:`PRESETS`), e.g. ``create_slowfast_preset("r50_8x8")``."""
    return create_slowfast(config=preset_config(name, num_classes=num_classes, **overrides))


# ---------------------------------------------------------------------------------------------
# Cost
def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def slowfast_gmacs(config: SlowFastConfig, size: int = 224) -> float:
    """GMACs of one clip at ``size``² (conv + linear, docs/models.md §1.1).

    Counted by the forward-hook counter on the ``meta`` device: shapes propagate, nothing is
    allocated or computed, so R101 16×8 counts in well under a second instead of a long CPU forward.
    """
    with torch.device("meta"):
        model = create_slowfast(config=config).eval()
        clip = torch.zeros(1, 3, config.fast_frames, size, size)
    return count_macs(model, clip) / 1e9


def describe_preset(name: str, num_classes: int = 400, size: int = 224) -> dict:
    """Parameters, GMACs, frames, α and slow indices of a preset (for ``edgevid info``)."""
    config = preset_config(name, num_classes=num_classes)
    with torch.device("meta"):
        params = count_parameters(create_slowfast(config=config))
    return {"preset": name, "num_classes": num_classes, "size": size, "params": params,
            "gmacs": round(slowfast_gmacs(config, size), 4), "frames": config.fast_frames,
            "slow_frames": config.slow_frames, "alpha": config.alpha, "tau": config.tau,
            "frame_stride": config.frame_stride, "depth": config.depth,
            "slow_indices": slow_indices(config.fast_frames, config.alpha).tolist()}
