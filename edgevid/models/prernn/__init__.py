"""PreRNN and PreRNN-SIH (docs/models.md §4; seeds/001_664341224fa4ab8e.txt): a trained CNN layer becomes a
recurrent layer whose input-to-hidden weights are the pretrained ones.

- :mod:`.cells`       VRNN/LSTM/GRU recurrences (traditional, gate-dependent PreRNN, SIH), gate recording
- :mod:`.convert`     CNN → converted model (VGG fc layers, ResNet last conv unit), traditional baseline
- :mod:`.model`       :class:`PreRNNModel`: backbone (frame → v) and step ((v, h, c) → (h, c, logits))
- :mod:`.build`       :class:`PreRNNConfig`, torchvision CNNs from local weights, :func:`create_prernn`
- :mod:`.params`      recurrent parameters added per form (the "up to 82%" claim)
- :mod:`.saturation`  gate-saturation analysis and the keep/revert rule (claims 11–12)
"""
from __future__ import annotations

from .build import ARCHS, PreRNNConfig, build_cnn, create_prernn  # noqa: F401
from .cells import (FORMS, GATE_NAMES, GATES, LinearDrive, RecurrentLayer, Recurrence, make_layer,  # noqa: F401
                    recording_gates, traditional_drive)
from .convert import ConvDrive, convert, small_vgg  # noqa: F401
from .model import PreRNNModel  # noqa: F401
