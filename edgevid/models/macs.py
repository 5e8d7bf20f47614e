"""Count GMACs of convolution, linear and LSTM-cell layers by running the model once (docs/models.md §1.1).

Folded BN, activations, pooling and element-wise ops are not counted, matching the published units.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .modes import eval_mode


def count_macs(model: nn.Module, *inputs: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass with ``inputs`` (per whole batch)."""
    total = [0]

    def conv_hook(module, args, output):
        kernel = 1
        for k in module.kernel_size:
            kernel *= k
        total[0] += output.numel() * (module.in_channels // module.groups) * kernel

    def linear_hook(module, args, output):
        total[0] += output.numel() * module.in_features

    def lstm_cell_hook(module, args, output):
        rows = args[0].shape[0] if args[0].dim() > 1 else 1
        total[0] += rows * 4 * module.hidden_size * (module.input_size + module.hidden_size)

    handles = []
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
        elif isinstance(m, nn.LSTMCell):
            handles.append(m.register_forward_hook(lstm_cell_hook))
    try:
        with torch.no_grad():
            model(*inputs)
    finally:
        for h in handles:
            h.remove()
    return total[0]


def gmacs(model: nn.Module, shape: Sequence[int]) -> float:
    """GMACs per sample of ``model`` on one zero input of ``shape`` (batch 1 included in shape)."""
    with eval_mode(model):
        return count_macs(model, torch.zeros(*shape)) / 1e9 / shape[0]
