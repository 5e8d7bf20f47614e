"""Training side (PyTorch): one small training loop with checkpoints and resume, losses, LiteEval training.

Imports torch: use from the workstation, never on the device side.
"""
from __future__ import annotations

from .liteeval import (  # noqa: F401
    FeatureSet, LiteEvalTrainResult, extract_features, load_liteeval_checkpoint, recalibrate_bn, train_liteeval,
)
from .loop import FitResult, TensorBatches, Trainer  # noqa: F401
from .losses import liteeval_loss  # noqa: F401
from .prernn import PreRNNTrainResult, load_prernn_checkpoint, train_prernn  # noqa: F401

__all__ = ["Trainer", "TensorBatches", "FitResult", "liteeval_loss", "FeatureSet", "extract_features",
           "recalibrate_bn", "train_liteeval", "load_liteeval_checkpoint", "LiteEvalTrainResult",
           "train_prernn", "load_prernn_checkpoint", "PreRNNTrainResult"]
