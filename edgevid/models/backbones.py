"""torchvision backbones as per-frame feature extractors (global-average-pooled, no classifier).

LiteEval's coarse CNN is MobileNetV2 (1280-d feature) and its fine CNN a ResNet (512-d for 18/34,
2048-d for 50/101), docs/models.md §2.1. Users with ImageNet (or fine-tuned) weights pass a local
torchvision state dict; nothing is ever downloaded.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

import torch
from torch import nn

from ..errors import CheckpointError, ConfigError

FINE_ARCHS = {"resnet18": 512, "resnet34": 512, "resnet50": 2048, "resnet101": 2048}
COARSE_ARCHS = {"mobilenet_v2": 1280}


class FeatureExtractor(nn.Module):
    """``trunk`` followed by global average pooling: frames [N,3,H,W] → features [N, out_dim]."""

    def __init__(self, trunk: nn.Module, out_dim: int, arch: str):
        super().__init__()
        self.trunk = trunk
        self.out_dim = out_dim
        self.arch = arch

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = self.trunk(frames)
        return x.mean(dim=(2, 3))


def create_coarse_cnn(arch: str = "mobilenet_v2", *, weights: Optional[Union[str, Path]] = None) -> FeatureExtractor:
    """MobileNetV2 trunk (``features``) + global average pool → 1280-d per frame."""
    import torchvision

    if arch not in COARSE_ARCHS:
        raise ConfigError("unknown coarse backbone '%s'" % arch, None, "choose one of " + ", ".join(COARSE_ARCHS))
    net = torchvision.models.mobilenet_v2(weights=None)
    if weights:
        load_torchvision_weights(net, weights, drop_prefixes=("classifier.",))
    return FeatureExtractor(net.features, COARSE_ARCHS[arch], arch)


def create_fine_cnn(arch: str = "resnet101", *, weights: Optional[Union[str, Path]] = None) -> FeatureExtractor:
    """ResNet trunk up to the last stage + global average pool → 512-d (18/34) or 2048-d (50/101)."""
    import torchvision

    if arch not in FINE_ARCHS:
        raise ConfigError("unknown fine backbone '%s'" % arch, None, "choose one of " + ", ".join(FINE_ARCHS))
    net = getattr(torchvision.models, arch)(weights=None)
    if weights:
        load_torchvision_weights(net, weights, drop_prefixes=("fc.",))
    trunk = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3, net.layer4)
    return FeatureExtractor(trunk, FINE_ARCHS[arch], arch)


def load_torchvision_weights(net: nn.Module, path: Union[str, Path], drop_prefixes=()) -> None:
    """Load a torchvision-style state dict (``weights_only``) into ``net``, ignoring the classifier.

    The classifier is dropped because edgevid uses the pooled feature; every other key must match.
    """
    state = load_state_dict(path)
    state = {k: v for k, v in state.items() if not k.startswith(tuple(drop_prefixes))}
    own = {k for k in net.state_dict() if not k.startswith(tuple(drop_prefixes))}
    missing, unexpected = sorted(own - set(state)), sorted(set(state) - own)
    if missing or unexpected:
        raise CheckpointError("weights %s do not fit %s" % (path, type(net).__name__),
                              "missing keys %s; unexpected keys %s" % (few_keys(missing), few_keys(unexpected)),
                              "pass a torchvision state dict for this architecture")
    try:
        net.load_state_dict(state, strict=False)
    except RuntimeError as e:
        raise CheckpointError("weights %s do not fit %s" % (path, type(net).__name__), str(e).splitlines()[0],
                              "pass a state dict of the same architecture and width") from e


def load_state_dict(path: Union[str, Path]) -> dict:
    """Read a state dict safely (``weights_only=True``); unwraps {'state_dict': …} / {'model': …}."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError("checkpoint %s does not exist" % path, None, "check the path")
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises pickle, zip and runtime errors for bad files
        raise CheckpointError("cannot read checkpoint %s" % path, str(e).splitlines()[0] if str(e) else repr(e),
                              "pass a file saved with torch.save(model.state_dict(), path)") from e
    for key in ("state_dict", "model", "model_state"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise CheckpointError("checkpoint %s holds no state dict" % path, "found %s" % type(state).__name__,
                              "save it with torch.save(model.state_dict(), path)")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}


def few_keys(keys, n: int = 5) -> str:
    """The first ``n`` of ``keys`` and how many there are in all (for checkpoint errors)."""
    keys = list(keys)
    return "[]" if not keys else ", ".join(keys[:n]) + (" … (%d in all)" % len(keys) if len(keys) > n else "")
