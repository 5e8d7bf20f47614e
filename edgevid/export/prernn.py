"""PreRNN / PreRNN-SIH as a bundle of two graphs (docs/models.md §4.10; runtime contract in
:mod:`edgevid.runtime.recurrent`).

::

    frame [1,3,S,S] ─► backbone: trunk ─► converted layer's input term ─► v [1,H]  (SIH, VRNN)
                                                                          u [1,G·H] (gate-dependent, traditional)
    v | u, h_in[, c_in] ─► step: W_h* h (MatMul) + drive, Sigmoid/Tanh/Mul/Add ─► h_out[, c_out] ─► head ─► logits

The step is one explicit recurrence step in elementwise ops (the cell is written that way in
:mod:`edgevid.models.prernn.cells`; :func:`~edgevid.export.onnx.export_onnx` refuses ONNX LSTM/GRU/Loop).
Precision (recorded per graph): ``step`` stays FP32 by default, FP16 opt-in, never INT8; ``backbone`` is
quantizable, calibrated on whole sequences with state carried (docs/models.md §4.10).
"""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Union

import torch
from torch import nn

from ..bundle import Bundle
from ..errors import ExportError
from ..models.prernn import PreRNNModel
from ..families import prernn as rules
from ..families.settings import merge_policy
from .bundle import Progress, check_labels, write_bundle
from .roles import RoleGraph

FAMILY = "prernn"
POLICY_DEFAULTS = rules.POLICY_DEFAULTS
def drive_name(model: PreRNNModel) -> str:
    """``v`` when every gate shares one H-wide drive (SIH, VRNN), ``u`` for one H-block per gate."""
    return "u" if model.recurrence.drive_size != model.hidden else "v"


class StepU(nn.Module):
    """The step role for a gate-dependent drive: forward's first parameter is named ``u`` (export binds by name)."""

    def __init__(self, model: PreRNNModel):
        super().__init__()
        self.step = model.step_graph()

    def forward(self, u: torch.Tensor, h_in: torch.Tensor, c_in: Optional[torch.Tensor] = None):
        return self.step(u, h_in, c_in)


def prernn_roles(model: PreRNNModel, image_size: int, *, seed: int = 0) -> "OrderedDict[str, RoleGraph]":
    """``backbone`` and ``step`` of ``model`` with static batch-1 example inputs at ``image_size``²."""
    if not isinstance(model, PreRNNModel):
        raise ExportError("export_prernn needs a PreRNNModel", "got %s" % type(model).__name__,
                          "convert a CNN with edgevid.models.prernn.create_prernn or load a 'train prernn' checkpoint")
    gen = torch.Generator().manual_seed(seed)
    drive = drive_name(model)
    width = model.recurrence.drive_size
    frame = torch.randn(1, 3, image_size, image_size, generator=gen)
    feeds = OrderedDict([(drive, torch.randn(1, width, generator=gen)),
                         ("h_in", 0.5 * torch.randn(1, model.hidden, generator=gen))])
    outputs = ("h_out", "logits")
    if model.has_cell_state:
        feeds["c_in"] = 0.5 * torch.randn(1, model.hidden, generator=gen)
        outputs = ("h_out", "c_out", "logits")
    step = StepU(model) if drive == "u" else model.step_graph()
    common = {"cell": model.cell, "form": model.info.get("form"), "hidden": model.hidden}
    gmacs = prernn_gmacs(model, image_size)
    return OrderedDict([
        ("step", RoleGraph("step", step, feeds, outputs, dict(common, drive=drive), known_gmacs=gmacs["step"])),
        ("backbone", RoleGraph("backbone", model.backbone_graph(), OrderedDict([("frame", frame)]), (drive,),
                               dict(common, size=image_size), known_gmacs=gmacs["backbone"])),
    ])


def prernn_gmacs(model: PreRNNModel, image_size: int) -> Dict[str, float]:
    """GMACs per frame of each role: conv/linear layers (:func:`count_macs`) plus what it cannot see — the conv
    input term of a converted ResNet unit (F.conv2d) and the recurrent matmul W_h* h (G·H² per step)."""
    from ..models.macs import count_macs
    from ..models.prernn import ConvDrive
    from ..models.modes import eval_mode

    conv = [0]

    def conv_drive_hook(module, args, output):
        x, w = args[0], module.weight
        side = [(x.shape[2 + i] + 2 * module.padding[i] - module.dilation[i] * (w.shape[2 + i] - 1) - 1)
                // module.stride[i] + 1 for i in range(2)]
        conv[0] += x.shape[0] * w.shape[0] * side[0] * side[1] * w.shape[1] * w.shape[2] * w.shape[3]

    hooks = [m.register_forward_hook(conv_drive_hook) for m in model.modules() if isinstance(m, ConvDrive)]
    try:
        with eval_mode(model):
            backbone = count_macs(model.backbone_graph(), torch.zeros(1, 3, image_size, image_size))
    finally:
        for h in hooks:
            h.remove()
    with eval_mode(model):
        head = count_macs(model.head, torch.zeros(1, model.hidden))
    recurrent = model.recurrence.gates * model.hidden * model.hidden
    return {"backbone": (backbone + conv[0]) / 1e9, "step": (recurrent + head) / 1e9}


def prernn_policy(model: PreRNNModel, policy: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """``kind: recurrent`` with the cell and form and the reset settings (validated as the runtime does)."""
    merged = merge_policy(POLICY_DEFAULTS, policy)
    out = {"kind": "recurrent", "cell": model.cell, "form": model.info.get("form"), "step_unit": "frame"}
    out.update(merged)
    out.update(rules.FAMILY.check_policy(out))  # ConfigError for a bad number, as at run time
    return out


def export_prernn(model: PreRNNModel, out_dir: Union[str, Path], *, labels: Optional[Sequence[str]] = None,
                  config: Any = None, policy: Optional[Mapping[str, Any]] = None,
                  checkpoint_info: Optional[Mapping[str, Any]] = None, overwrite: bool = False,
                  progress: Optional[Progress] = None, simplify: bool = True,
                  flow: Optional[Mapping[str, Any]] = None) -> Bundle:
    """Export a :class:`PreRNNModel` as a bundle (family ``prernn``: ``backbone`` and ``step``) at ``out_dir``.

    - ``config``: the :class:`~edgevid.models.prernn.PreRNNConfig` (image size, labels; stored in the
      manifest's ``model``). Without it the model must carry ``num_classes`` labels via ``labels`` and
      the image size defaults to 224.
    - ``labels``: one name per class (``None`` takes ``config.labels``).
    - ``policy``: overrides of :data:`POLICY_DEFAULTS` (``max_steps`` = reset every N steps, ``max_gap_s``,
      ``scene_cut`` in (0, 1], ``step_fps``); unknown keys are refused.
    - ``flow``: the flow settings of a model trained on flow images (FlowSpec.to_dict()), as ``preprocess.flow``.

    Returns the :class:`Bundle` as loaded back from ``out_dir``.
    """
    image_size = int(getattr(config, "image_size", 224))
    roles = prernn_roles(model, image_size)
    with torch.no_grad():
        num_classes = int(roles["step"].module(*roles["step"].example_inputs.values())[-1].shape[1])
    labels = check_labels(_LabelSource(config, num_classes), labels)
    model_entry: Dict[str, Any] = dict(config.to_dict() if config is not None else {}, labels=list(labels))
    model_entry.update(info=dict(model.info), hidden=model.hidden, drive=drive_name(model))
    preprocess = rules.preprocess_spec(image_size)  # the training preprocessing: ImageNet mean/std, S×S
    policy = prernn_policy(model, policy)
    return write_bundle(out_dir, family=FAMILY, roles=roles, labels=labels, preprocess=preprocess, policy=policy,
                        model_entry=model_entry, checkpoint_info=checkpoint_info, overwrite=overwrite,
                        progress=progress, simplify=simplify, flow=flow)


class _LabelSource:
    """What :func:`check_labels` reads: the config's labels and the classes of the exported head."""

    def __init__(self, config: Any, num_classes: int):
        self.labels = list(getattr(config, "labels", None) or [])
        self.num_classes = num_classes
