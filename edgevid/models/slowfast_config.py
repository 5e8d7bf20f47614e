"""SlowFast settings and named presets (docs/models.md §3.1–3.2), without torch.

Kept apart from the modules so that ``edgevid info PRESET`` can recognise a preset name (and list
the presets in an error) on a machine that has no torch.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Dict, List, Optional, Tuple

from ..errors import ConfigError

STAGE_BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}
TRAIN_FPS = 30.0  # Kinetics clips are sampled at 30 fps (docs/models.md §3.1: window in raw frames @30 fps)


@dataclass
class SlowFastConfig:
    """Every setting of a SlowFast network. ``asdict`` of it goes into checkpoints and bundles.

    Pathway 0 is slow, 1 is fast. Channel widths are those of the slow pathway; the fast pathway
    has ``1/beta_inv`` of them. ``*_temporal_kernels`` are the conv-a temporal kernels of res2..res5.
    """

    num_classes: int = 400
    labels: List[str] = field(default_factory=list)
    depth: int = 50
    alpha: int = 4                  # fast/slow frame-rate ratio
    beta_inv: int = 8               # fast channels = slow channels / beta_inv
    tau: int = 8                    # raw-frame stride of the slow pathway (fast stride = tau / alpha)
    slow_frames: int = 8            # T; the clip has alpha * T fast frames
    fusion_kernel: int = 7
    fusion_channel_ratio: int = 2   # lateral conv: beta*C -> 2*beta*C
    stem_channels: int = 64
    width: int = 64                 # bottleneck inner width of res2 (doubles per stage)
    stage_blocks: Optional[Tuple[int, int, int, int]] = None  # None: from depth
    slow_temporal_kernels: Tuple[int, int, int, int] = (1, 1, 3, 3)
    fast_temporal_kernels: Tuple[int, int, int, int] = (3, 3, 3, 3)
    fast_stem_temporal_kernel: int = 5
    # Blocks per stage (from the first) that use the stage's temporal kernel, the rest use 1, as
    # PySlowFast's NUM_BLOCK_TEMP_KERNEL; None = all. The released R101 16x8 weights use (3, 4, 6, 3).
    temporal_kernel_blocks: Optional[Tuple[int, int, int, int]] = None
    dropout: float = 0.5

    def __post_init__(self):
        for name in ("stage_blocks", "slow_temporal_kernels", "fast_temporal_kernels", "temporal_kernel_blocks"):
            value = getattr(self, name)
            if value is not None:  # lists after a JSON/checkpoint round trip
                setattr(self, name, tuple(int(v) for v in value))
        self.labels = [str(x) for x in self.labels]
        self._validate()

    def _validate(self) -> None:
        if self.stage_blocks is None and self.depth not in STAGE_BLOCKS:
            raise ConfigError("SlowFast depth %r" % (self.depth,), "known depths are 50 and 101",
                              "use depth=50 or 101, or give stage_blocks explicitly")
        for name in ("alpha", "beta_inv", "tau", "slow_frames", "stem_channels", "width", "num_classes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError("SlowFast %s=%r" % (name, value), "it must be a positive integer", None)
        if self.tau % self.alpha:
            raise ConfigError("SlowFast tau=%d is not a multiple of alpha=%d" % (self.tau, self.alpha),
                              "the fast pathway samples every tau/alpha raw frames", "choose tau = k * alpha")
        if self.fusion_kernel % 2 == 0 or self.fusion_kernel < 1:
            raise ConfigError("SlowFast fusion_kernel=%r" % (self.fusion_kernel,),
                              "the lateral conv pads k//2 on both sides, so k must be odd", "use 5 or 7")
        if self.stem_channels % self.beta_inv or self.width % self.beta_inv:
            raise ConfigError("SlowFast channels %d/%d are not divisible by beta_inv=%d" % (
                self.stem_channels, self.width, self.beta_inv), "the fast pathway has 1/beta_inv of them", None)
        if self.labels and len(self.labels) != self.num_classes:
            raise ConfigError("%d labels for %d classes" % (len(self.labels), self.num_classes), None,
                              "give one label per class")

    @property
    def blocks(self) -> Tuple[int, int, int, int]:
        return self.stage_blocks or STAGE_BLOCKS[self.depth]

    @property
    def fast_frames(self) -> int:
        """Frames of one clip (the graph input): alpha * T."""
        return self.alpha * self.slow_frames

    @property
    def frame_stride(self) -> int:
        """Raw frames between two fast frames at the training rate (tau / alpha)."""
        return self.tau // self.alpha

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "SlowFastConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError("unknown SlowFast settings %s" % unknown, None, "known settings are " + ", ".join(sorted(known)))
        return cls(**d)


# Published configurations (docs/models.md §3.1) plus small ones that train on a CPU in tests.
PRESETS: Dict[str, Dict[str, Any]] = {
    "r50_4x16": dict(depth=50, alpha=8, tau=16, slow_frames=4, fusion_kernel=5),
    "r50_8x8": dict(depth=50, alpha=4, tau=8, slow_frames=8, fusion_kernel=7),
    # PyTorchVideo's slowfast_r101 (zoo 8x8): the temporal kernel in every res4 block
    "r101_8x8": dict(depth=101, alpha=4, tau=8, slow_frames=8, fusion_kernel=5),
    "r101_16x8": dict(depth=101, alpha=4, tau=8, slow_frames=16, fusion_kernel=5,
                      temporal_kernel_blocks=(3, 4, 6, 3)),  # without non-local blocks
    # about 55k parameters: 8 frames of 32-64 px run in milliseconds
    "tiny": dict(depth=50, stage_blocks=(1, 1, 1, 1), alpha=2, tau=4, slow_frames=4, fusion_kernel=3,
                 beta_inv=4, stem_channels=8, width=4, dropout=0.0),
    # R50 layout at a quarter of the width and 2 blocks per stage: enough to learn a toy task
    "small": dict(depth=50, stage_blocks=(2, 2, 2, 2), alpha=4, tau=8, slow_frames=4, fusion_kernel=5,
                  beta_inv=8, stem_channels=16, width=16),
}


def preset_config(name: str, num_classes: int = 400, **overrides) -> SlowFastConfig:
    """The :class:`SlowFastConfig` of a preset, with ``num_classes`` and any setting overridden."""
    if name not in PRESETS:
        raise ConfigError("unknown SlowFast preset %r" % (name,), "presets are " + ", ".join(PRESETS),
                          "choose one of them")
    return SlowFastConfig.from_dict(dict(PRESETS[name], num_classes=num_classes, **overrides))

