"""SlowFast as a bundle: one graph, role ``clip`` (docs/models.md §3.5).

::

    clip [1,3,αT,S,S] ─► Gather(T, linspace indices) ─► slow ┐
                    └──────────────────────────────► fast ──┴─► SlowFast ─► logits [1,C]

The slow frames are gathered inside the graph with constant indices (docs/models.md §3.3), so the device
feeds one tensor. ``two_input=True`` exports the reference two-pathway form instead (inputs ``slow``,
``fast``), for tools that sample the pathways themselves.
"""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Union

import torch
from torch import nn

from ..bundle import Bundle
from ..errors import ConfigError, ExportError
from ..models.slowfast import SlowFast, slow_indices, slowfast_gmacs
from ..families import slowfast as rules
from ..families.settings import merge_policy
from ..models.slowfast_config import TRAIN_FPS
from .bundle import Progress, check_labels, write_bundle
from .roles import RoleGraph

SIZES = (224, 256)  # training crop, and the thesis's test crop (docs/models.md §3.4)


class ClipGraph(nn.Module):
    """Role ``clip``: ``clip`` → ``logits`` (the model gathers its slow frames itself)."""

    def __init__(self, model: SlowFast):
        super().__init__()
        self.model = model

    def forward(self, clip):
        return self.model(clip)


class TwoPathwayGraph(nn.Module):
    """Role ``clip`` in the two-input form: ``slow``, ``fast`` → ``logits``."""

    def __init__(self, model: SlowFast):
        super().__init__()
        self.model = model

    def forward(self, slow, fast):
        return self.model([slow, fast])


def slowfast_role(model: SlowFast, *, size: int = 224, two_input: bool = False, seed: int = 0) -> RoleGraph:
    """The export wrapper of ``model`` with static example inputs at ``size``²."""
    if not isinstance(model, SlowFast):
        raise ExportError("export_slowfast needs a SlowFast model", "got %s" % type(model).__name__,
                          "build it with edgevid.models.slowfast.create_slowfast and load the weights")
    if isinstance(size, bool) or not isinstance(size, int) or size < 32 or size % 32:
        raise ConfigError("SlowFast export size %r" % (size,), "the network downsamples by 32",
                          "use a multiple of 32: 224 (training crop) or 256 (test crop)")
    c = model.config
    gen = torch.Generator().manual_seed(seed)
    clip = torch.randn(1, 3, c.fast_frames, size, size, generator=gen)
    index = slow_indices(c.fast_frames, c.alpha)
    extra: Dict[str, Any] = {"frames": c.fast_frames, "slow_indices": index.tolist(), "size": size}
    gmacs = slowfast_gmacs(c, size)
    if two_input:
        inputs = OrderedDict([("slow", clip.index_select(2, index)), ("fast", clip)])
        return RoleGraph("clip", TwoPathwayGraph(model), inputs, ("logits",), extra, known_gmacs=gmacs)
    return RoleGraph("clip", ClipGraph(model), OrderedDict([("clip", clip)]), ("logits",), extra, known_gmacs=gmacs)


def slowfast_policy(model: SlowFast, policy: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """``kind: clip`` with the clip length, the raw-frame stride at the training rate and the sampling rate,
    plus any of the stream settings ``every``, ``smooth``, ``pad``, ``max_gap_s`` given in ``policy``
    (validated by the family's rules, as the runtime does)."""
    c = model.config
    defaults = {"kind": "clip", "frames": c.fast_frames, "frame_stride": c.frame_stride,
                "train_fps": TRAIN_FPS, "step_fps": TRAIN_FPS / c.frame_stride}
    defaults.update({k: None for k in rules.STREAM_SETTINGS})
    merged = merge_policy(defaults, policy)
    if merged["frames"] != c.fast_frames:
        raise ConfigError("policy frames=%r for a SlowFast with %d-frame clips" % (merged["frames"], c.fast_frames),
                          "the graph has a static clip length", "leave frames at %d" % c.fast_frames)
    rules.FAMILY.check_policy(merged)  # ConfigError for a bad value
    return {k: v for k, v in merged.items() if v is not None or k not in rules.STREAM_SETTINGS}


def export_slowfast(model: SlowFast, out_dir: Union[str, Path], *, size: int = 224,
                    labels: Optional[Sequence[str]] = None, resize_short: int = 256, two_input: bool = False,
                    policy: Optional[Mapping[str, Any]] = None, checkpoint_info: Optional[Mapping[str, Any]] = None,
                    overwrite: bool = False, progress: Optional[Progress] = None, simplify: bool = True,
                    flow: Optional[Mapping[str, Any]] = None) -> Bundle:
    """Export a :class:`SlowFast` as a bundle (family ``slowfast``, one role ``clip``) at ``out_dir``.

    - ``size``: square crop the graph takes (224 default, 256 for the thesis's test views).
    - ``labels``: one name per class (``None`` takes ``model.config.labels``).
    - ``resize_short``: short side before the centre crop (256, docs/models.md §3.4).
    - ``two_input``: inputs ``slow`` and ``fast`` instead of one ``clip``.
    - ``policy``: overrides of the clip policy (``step_fps`` …, see :func:`slowfast_policy`).

    Returns the :class:`Bundle` as loaded back from ``out_dir``.
    """
    role = slowfast_role(model, size=size, two_input=two_input)
    labels = check_labels(model.config, labels)
    preprocess = rules.preprocess_spec(size, resize_short)
    model_entry = dict(model.config.to_dict(), labels=list(labels), input="two_input" if two_input else "clip")
    return write_bundle(out_dir, family="slowfast", roles={"clip": role}, labels=labels, preprocess=preprocess,
                        policy=slowfast_policy(model, policy), model_entry=model_entry,
                        checkpoint_info=checkpoint_info, overwrite=overwrite, progress=progress, simplify=simplify,
                        flow=flow)
