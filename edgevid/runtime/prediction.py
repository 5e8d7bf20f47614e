"""What a stream delivers: :class:`Prediction`, and the helpers every family's last stage shares."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Sequence

import numpy as np

from ..errors import FrameError


@dataclass
class Prediction:
    """A label for one frame. ``latency`` is seconds from capture to the label reaching the caller.

    ``path`` says what produced it: LiteEval "fine" | "coarse"; SlowFast "clip" (a clip ran on this
    frame) | "held" (the latest clip's label carried to this frame); PreRNN "step".
    ``image`` (the BGR frame) and ``logits`` ([C]) ride along for annotation and checks; ``to_dict``
    leaves them out.
    """

    frame_index: int
    timestamp: float
    label: str
    class_index: int
    score: float
    path: str
    latency: float = 0.0
    image: Optional[np.ndarray] = field(default=None, repr=False, compare=False)
    logits: Optional[np.ndarray] = field(default=None, repr=False, compare=False)

    def to_dict(self) -> Dict[str, Any]:
        return {"frame_index": self.frame_index, "timestamp": self.timestamp, "label": self.label,
                "class_index": self.class_index, "score": self.score, "path": self.path, "latency": self.latency}


def predict(frame: Any, logits: np.ndarray, labels: Sequence[str], path: str) -> Prediction:
    """The Prediction of ``logits`` ([C] or [1, C]) for ``frame``: argmax label and its softmax score."""
    logits = np.asarray(logits).reshape(-1)
    index = int(np.argmax(logits))
    probs = softmax(logits)
    label = labels[index] if index < len(labels) else str(index)
    return Prediction(frame.index, float(frame.timestamp), label, index, float(probs[index]), path,
                      image=camera_image(frame), logits=logits)


def camera_image(frame: Any) -> Optional[np.ndarray]:
    """The camera's picture of a source Frame: the colour image a flow frame came from (runtime/flow.py), else its
    image. Scene cuts are judged and videos annotated on it, never on a flow image."""
    colour = getattr(frame, "colour", None)
    return getattr(frame, "image", None) if colour is None else colour


def frame_image(frame: Any) -> np.ndarray:
    """The BGR image of a source Frame; FrameError for anything else."""
    image = getattr(frame, "image", None)
    if image is None:
        raise FrameError("a source yielded %s" % type(frame).__name__, "the runtime needs Frame objects",
                         "open sources with edgevid.runtime.source.open_source")
    return image


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - float(np.max(logits))
    e = np.exp(z)
    total = float(e.sum())
    return e / total if total > 0 and math.isfinite(total) else np.full_like(e, 1.0 / e.size)
