"""One graph role ready to export: module, example inputs, output names, cost (shared by all families)."""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import torch
from torch import nn

from ..models.macs import count_macs
from ..models.modes import eval_mode


@dataclass
class RoleGraph:
    """A role ready to export: the module, example inputs (name → tensor) and output names.

    Precision rules and recurrent state links come from the family table (edgevid.families), not from here."""

    role: str
    module: nn.Module
    example_inputs: "OrderedDict[str, torch.Tensor]"
    output_names: Tuple[str, ...]
    extra: Dict = field(default_factory=dict)
    # known cost: big 3D CNNs are counted on the meta device instead of by a real CPU forward
    known_gmacs: Optional[float] = None

    def gmacs(self) -> float:
        """GMACs of one call (conv + linear + LSTM matrix products, docs/models.md §1.1).

        ``known_gmacs`` when given; otherwise counted on the example inputs in eval mode (the
        training flags of every submodule, e.g. a wrapped backbone, are restored afterwards).
        """
        if self.known_gmacs is not None:
            return self.known_gmacs
        with eval_mode(self.module):
            return count_macs(self.module, *self.example_inputs.values()) / 1e9
