"""Build PreRNN models from a configuration: the CNN (torchvision VGG/ResNet or :func:`small_vgg`, optionally
from a local state dict; nothing is downloaded), then :func:`convert`."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from torch import nn

from ...errors import ConfigError
from .cells import check_cell
from .convert import convert, small_vgg
from .model import PreRNNModel

VGG_ARCHS = ("vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn")
RESNET_ARCHS = ("resnet18", "resnet34", "resnet50", "resnet101")
ARCHS = ("small_vgg",) + VGG_ARCHS + RESNET_ARCHS


@dataclass
class PreRNNConfig:
    """What to convert: ``arch`` (see :data:`ARCHS`), ``layer`` (fc6/fc7/fc8/classifier.<i> for VGG-style,
    layer4 for ResNet; ignored by ``form="traditional"``), ``cell`` vrnn/lstm/gru, ``form`` prernn/sih/traditional.
    ``hidden``: None = the layer's output size (required for PreRNN; free for traditional). ``image_size``:
    square input side (docs/models.md §1.3: 224)."""

    num_classes: int
    arch: str = "vgg16"
    layer: str = "fc6"
    cell: str = "lstm"
    form: str = "sih"
    hidden: Optional[int] = None
    gate_bias: bool = False
    pre_pool_relu: bool = True
    image_size: int = 224
    labels: List[str] = field(default_factory=list)

    def __post_init__(self):
        if self.num_classes < 2:
            raise ConfigError("PreRNN needs at least 2 classes", "got %d" % self.num_classes, None)
        if self.arch not in ARCHS:
            raise ConfigError("unknown architecture '%s'" % self.arch, None, "choose one of " + ", ".join(ARCHS))
        check_cell(self.cell, self.form)
        if self.labels and len(self.labels) != self.num_classes:
            raise ConfigError("%d labels for %d classes" % (len(self.labels), self.num_classes), None,
                              "give one label per class")
        if self.image_size < 16:
            raise ConfigError("image size %d" % self.image_size, "the CNN downsamples by up to 32", "use >= 32")

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def _final_prefix(arch: str) -> str:
    return "fc." if arch.startswith("resnet") else "classifier.6."


def build_cnn(arch: str, num_classes: int, *, weights: Optional[Union[str, Path]] = None) -> nn.Module:
    """The CNN to convert, with ``num_classes`` outputs, from a local state dict when ``weights`` is given.

    The final classifier is taken from the file only when its size matches (an ImageNet file for a 10-class
    model keeps everything else); every other key must fit, or CheckpointError (e.g. ResNet weights for a VGG).
    """
    from ..backbones import load_state_dict, load_torchvision_weights

    if arch == "small_vgg":
        net = small_vgg(num_classes)
    elif arch in VGG_ARCHS + RESNET_ARCHS:
        import torchvision

        net = getattr(torchvision.models, arch)(weights=None, num_classes=num_classes)
    else:
        raise ConfigError("unknown architecture '%s'" % arch, None, "choose one of " + ", ".join(ARCHS))
    if weights:
        prefix = _final_prefix(arch)
        saved = load_state_dict(weights).get(prefix + "weight")
        own = net.state_dict()[prefix + "weight"]
        keep_head = saved is not None and tuple(saved.shape) == tuple(own.shape)
        load_torchvision_weights(net, weights, drop_prefixes=() if keep_head else (prefix,))
    return net


def create_prernn(config: PreRNNConfig, *, weights: Optional[Union[str, Path]] = None,
                  cnn: Optional[nn.Module] = None) -> PreRNNModel:
    """Convert ``cnn`` (default: :func:`build_cnn` of ``config.arch`` with ``weights``) as ``config`` says."""
    cnn = cnn if cnn is not None else build_cnn(config.arch, config.num_classes, weights=weights)
    return convert(cnn, layer=config.layer, cell=config.cell, form=config.form, hidden=config.hidden,
                   gate_bias=config.gate_bias, pre_pool_relu=config.pre_pool_relu, num_classes=config.num_classes)
