"""Convert a trained CNN into a PreRNN / PreRNN-SIH model (docs/models.md §4.2–4.5), or put a traditional RNN on top.

Supported layers:

- a Linear layer of a VGG-style ``classifier`` (torchvision VGG, :func:`small_vgg`): ``fc6``, ``fc7``,
  ``fc8`` (the 1st/2nd/3rd Linear) or ``classifier.<i>``. The activation right after it becomes the VRNN's H
  (identity when none follows); the layers after stay as they were.
- the last convolutional unit of a torchvision ResNet (``layer4``): last conv of the final block + its BN
  with frozen statistics + residual γ_t + post-addition ReLU (``pre_pool_relu``) + global average pooling
  (eq. 6); VRNN H = ReLU; ``fc`` stays.

``form="traditional"`` keeps the CNN whole up to its pooled feature (VGG: fc7 output; ResNet: average pool)
and adds a new cell (eqs. 1–3) plus a new classifier (docs/models.md §4.1, the baseline).
"""
from __future__ import annotations

import copy
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ConfigError
from .cells import (Recurrence, check_cell, check_hidden, drive_copies, traditional_drive, LinearDrive)
from .model import PreRNNModel

ACTIVATIONS = (nn.ReLU, nn.Tanh, nn.Sigmoid)
SUPPORTED = ("VGG-style classifier Linear layers (fc6, fc7, fc8 or classifier.<i>) and the last conv unit of a "
             "torchvision ResNet (layer4)")


class ConvDrive(nn.Module):
    """Conv input term, eqs. (6), (7), (10): P(ReLU(B(W_xy * x_t) + γ_t)) with ``copies`` gate blocks.

    B uses the pretrained running statistics, frozen ("pre-computed mini-batch statistics") in training and
    eval alike; its affine parameters and the kernel are fine-tuned. ``pre_pool_relu`` applies the block's
    post-addition ReLU before the pool (edgevid default, so P(·) is the original pooled feature).
    """

    def __init__(self, conv: nn.Conv2d, bn: nn.BatchNorm2d, copies: int = 1, pre_pool_relu: bool = True):
        super().__init__()
        self.copies, self.pre_pool_relu, self.eps = copies, bool(pre_pool_relu), bn.eps
        self.stride, self.padding, self.dilation, self.groups = conv.stride, conv.padding, conv.dilation, conv.groups
        rep = lambda t: t.detach().clone().repeat(copies, *([1] * (t.dim() - 1)))  # noqa: E731  gate copies of W_xy
        self.weight = nn.Parameter(rep(conv.weight))
        self.conv_bias = None if conv.bias is None else nn.Parameter(rep(conv.bias))
        self.bn_weight = nn.Parameter(rep(bn.weight))
        self.bn_bias = nn.Parameter(rep(bn.bias))
        self.register_buffer("running_mean", rep(bn.running_mean))
        self.register_buffer("running_var", rep(bn.running_var))

    def forward(self, x: torch.Tensor, gamma: Optional[torch.Tensor] = None) -> torch.Tensor:
        y = F.conv2d(x, self.weight, self.conv_bias, self.stride, self.padding, self.dilation, self.groups)
        y = F.batch_norm(y, self.running_mean, self.running_var, self.bn_weight, self.bn_bias, False, 0.0, self.eps)
        if gamma is not None:
            y = y + (gamma.repeat(1, self.copies, 1, 1) if self.copies > 1 else gamma)
        if self.pre_pool_relu:
            y = F.relu(y)
        return y.mean(dim=(2, 3))


class ResNetTrunk(nn.Module):
    """ResNet up to the last conv of the final block: frames → (x_t, γ_t) (the last conv's input, the residual)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        block = net.layer4[-1]
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3,
                                  *list(net.layer4)[:-1])
        parts = [block.conv1, block.bn1, nn.ReLU()]
        if hasattr(block, "conv3"):        # Bottleneck: conv3/bn3 is the converted unit
            parts += [block.conv2, block.bn2, nn.ReLU()]
        self.pre = nn.Sequential(*parts)
        self.downsample = block.downsample if block.downsample is not None else nn.Identity()

    def forward(self, frames: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        inp = self.stem(frames)
        return self.pre(inp), self.downsample(inp)


class VGGTrunk(nn.Module):
    """VGG ``features → avgpool → flatten → classifier[:k]``: frames → the input of classifier[k]."""

    def __init__(self, net: nn.Module, k: int):
        super().__init__()
        self.features, self.avgpool = net.features, net.avgpool
        self.classifier = nn.Sequential(*list(net.classifier)[:k])

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(frames)), 1))


def small_vgg(num_classes: int = 10, *, width: int = 8, fc: int = 32, pool: int = 2) -> nn.Module:
    """A tiny VGG-style CNN with torchvision VGG's layout (``features``, ``avgpool``, ``classifier`` =
    fc6, ReLU, Dropout, fc7, ReLU, Dropout, fc8), for tests and demos."""
    class SmallVGG(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, width, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
                nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2))
            self.avgpool = nn.AdaptiveAvgPool2d((pool, pool))
            self.classifier = nn.Sequential(
                nn.Linear(2 * width * pool * pool, fc), nn.ReLU(True), nn.Dropout(),
                nn.Linear(fc, fc), nn.ReLU(True), nn.Dropout(), nn.Linear(fc, num_classes))

        def forward(self, x):
            return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

    return SmallVGG()


def _is_resnet(net: nn.Module) -> bool:
    return all(hasattr(net, a) for a in ("conv1", "layer4", "avgpool", "fc"))


def _is_vgg(net: nn.Module) -> bool:
    return all(hasattr(net, a) for a in ("features", "avgpool")) and isinstance(getattr(net, "classifier", None),
                                                                               nn.Sequential)


def _vgg_index(net: nn.Module, layer: str) -> int:
    """Index in ``classifier`` of ``fc6``/``fc7``/``fc8`` (1st/2nd/3rd Linear) or ``classifier.<i>``."""
    linears = [i for i, m in enumerate(net.classifier) if isinstance(m, nn.Linear)]
    if layer.startswith("fc") and layer[2:].isdigit() and 0 <= int(layer[2:]) - 6 < len(linears):
        return linears[int(layer[2:]) - 6]
    if layer.startswith("classifier.") and layer[11:].isdigit() and int(layer[11:]) < len(net.classifier):
        k = int(layer[11:])
        if isinstance(net.classifier[k], nn.Linear):
            return k
        raise ConfigError("layer %s is a %s" % (layer, type(net.classifier[k]).__name__),
                          "only Linear layers of the classifier can be converted", "supported: " + SUPPORTED)
    names = ", ".join("fc%d (classifier.%d)" % (6 + j, i) for j, i in enumerate(linears))
    raise ConfigError("layer '%s' is not a convertible layer of this VGG-style model" % layer,
                      "supported: " + SUPPORTED, "choose one of " + names)


def convert(cnn: nn.Module, *, layer: str, cell: str, form: str, hidden: Optional[int] = None,
            gate_bias: bool = False, pre_pool_relu: bool = True, num_classes: Optional[int] = None) -> PreRNNModel:
    """Replace ``layer`` of a trained ``cnn`` by a ``cell`` (vrnn/lstm/gru) layer of ``form`` (prernn/sih), or
    (``form="traditional"``) put a new cell of size ``hidden`` and a new ``num_classes`` classifier on its
    pooled feature. The CNN is copied, never modified. Pretrained weights become W_xy (and b_xy, frozen BN);
    W_h* are new. ConfigError for unsupported models/layers or a ``hidden`` ≠ the layer's output size.
    """
    check_cell(cell, form)
    net = copy.deepcopy(cnn)
    info = {"cell": cell, "form": form, "layer": layer, "gate_bias": bool(gate_bias),
            "pre_pool_relu": bool(pre_pool_relu)}
    if form == "traditional":
        return _rnn_on_top(net, cell, hidden, gate_bias, num_classes, info)
    if _is_resnet(net):
        if layer not in ("layer4", "last_conv"):
            raise ConfigError("layer '%s' of a ResNet" % layer, "supported: " + SUPPORTED,
                              "use layer4 (the last conv unit of the final block)")
        return _convert_resnet(net, cell, form, hidden, gate_bias, pre_pool_relu, info)
    if _is_vgg(net):
        return _convert_vgg(net, _vgg_index(net, layer), cell, form, hidden, gate_bias, info)
    raise ConfigError("cannot convert a %s" % type(cnn).__name__, "supported: " + SUPPORTED,
                      "use a torchvision VGG/ResNet or a model with the same attribute layout")


def _convert_vgg(net, k, cell, form, hidden, gate_bias, info) -> PreRNNModel:
    fc = net.classifier[k]
    check_hidden(hidden, fc.out_features, "classifier.%d Linear(%d, %d)" % (k, fc.in_features, fc.out_features))
    rest = list(net.classifier)[k + 1:]
    act = None
    if rest and isinstance(rest[0], ACTIVATIONS):   # the layer's own activation: the VRNN's H (eq. 5)
        act = type(rest[0])()
        rest = rest[1:]
    drive = LinearDrive.from_pretrained(fc, drive_copies(cell, form))
    rec = Recurrence(cell, fc.out_features, shared_drive=form == "sih", activation=act or nn.Identity(),
                     gate_bias=gate_bias)
    info.update(kind="fc", in_features=fc.in_features, layer_index=k)
    return PreRNNModel(VGGTrunk(net, k), drive, rec, nn.Sequential(*rest), info)


def _convert_resnet(net, cell, form, hidden, gate_bias, pre_pool_relu, info) -> PreRNNModel:
    block = net.layer4[-1]
    conv, bn = (block.conv3, block.bn3) if hasattr(block, "conv3") else (block.conv2, block.bn2)
    check_hidden(hidden, bn.num_features, "the last conv unit (%d channels)" % bn.num_features)
    drive = ConvDrive(conv, bn, drive_copies(cell, form), pre_pool_relu)
    rec = Recurrence(cell, bn.num_features, shared_drive=form == "sih", activation=nn.ReLU(), gate_bias=gate_bias)
    info.update(kind="conv", in_features=conv.in_channels)
    return PreRNNModel(ResNetTrunk(net), drive, rec, nn.Sequential(net.fc), info)


def _rnn_on_top(net, cell, hidden, gate_bias, num_classes, info) -> PreRNNModel:
    if _is_resnet(net):
        trunk = nn.Sequential(*[m for n, m in net.named_children() if n != "fc"], nn.Flatten(1))
        feat, old = net.fc.in_features, net.fc
    elif _is_vgg(net):
        last = [i for i, m in enumerate(net.classifier) if isinstance(m, nn.Linear)][-1]
        trunk, feat, old = VGGTrunk(net, last), net.classifier[last].in_features, net.classifier[last]
    else:
        raise ConfigError("cannot put an RNN on a %s" % type(net).__name__, "supported: " + SUPPORTED, None)
    hidden = int(hidden or feat)
    num_classes = int(num_classes or old.out_features)
    info.update(kind="top", in_features=feat, layer="top")
    return PreRNNModel(trunk, traditional_drive(feat, hidden, cell),
                       Recurrence(cell, hidden, gate_bias=gate_bias), nn.Sequential(nn.Linear(hidden, num_classes)),
                       info)
