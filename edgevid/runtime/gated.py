"""LiteEval's stages for the StreamRuntime: both resolutions, the coarse CNN ahead, the gated chain.

::

    capture ─► preprocess (224 + 112) ─► coarse_cnn (112) ─► chain: coarse_step ─► [fine_cnn ─► fine_step]
                                                                     (serial: the gate needs the last fine state)

The stateless coarse CNN runs ahead of the serial chain on later frames; the fine CNN runs inside the
chain because whether it runs at all depends on the gate of the same step (policies.GatedPolicy).
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np

from ..bundle import Bundle
from ..families import liteeval as rules
from .policies import GatedPolicy
from .prediction import Prediction, frame_image, predict
from .stats import StreamStats


class _Work:
    """One frame on its way through the stages."""

    __slots__ = ("frame", "inputs", "feat_c")

    def __init__(self, frame: Any, inputs: Dict[int, np.ndarray]):
        self.frame = frame
        self.inputs = inputs
        self.feat_c: Optional[np.ndarray] = None


class GatedStages:
    """The stage functions over active sessions; each is called by one thread at a time.

    Stream options (families.liteeval): ``fine_cap``, ``fine_window`` (override the bundle's policy, see GatedPolicy).
    """

    @classmethod
    def check(cls, bundle: Bundle, options: Mapping[str, Any]) -> Dict[str, Any]:
        """The plan: settings (policy with ``options`` over it) and the graph contract, validated once."""
        return {"settings": rules.FAMILY.check_policy(bundle.policy, options), "contract": rules.contract(bundle)}

    def __init__(self, bundle: Bundle, sessions: Dict[str, Any], stats: StreamStats, plan: Mapping[str, Any]):
        from ..preprocess import Preprocessor

        self.labels = list(bundle.labels)
        sizes = plan["contract"]["sizes"]
        self.coarse_size, self.fine_size = sizes["coarse"], sizes["fine"]
        self.pre = Preprocessor(bundle.preprocess)
        self.coarse_cnn = sessions["coarse_cnn"]
        self.stats = stats
        self.policy = GatedPolicy(bundle, sessions, record=stats.add_stage, plan=plan)

    def as_list(self) -> List[Tuple[str, Any]]:
        return [("preprocess", self.preprocess), ("coarse", self.coarse), ("chain", self.chain)]

    def preprocess(self, frame: Any) -> _Work:
        image = frame_image(frame)
        # the preprocessor reuses its output buffers: queued work must own its inputs
        inputs = {size: np.array(arr) for size, arr in self.pre(image).items()
                  if size in (self.coarse_size, self.fine_size)}
        return _Work(frame, inputs)

    def coarse(self, work: _Work) -> _Work:
        out = self.coarse_cnn.infer({"frame": work.inputs[self.coarse_size]})
        work.feat_c = np.array(out["feat"])
        return work

    def chain(self, work: _Work) -> Tuple[Prediction, float]:
        frame = work.frame
        logits, path = self.policy.step(work.feat_c, work.inputs[self.fine_size], frame.timestamp)
        self.stats.add_step(path, self.policy.last_capped)
        self.stats.set(resets=self.policy.resets)
        return predict(frame, logits, self.labels, path), frame.captured
