"""LiteEval's stages for the StreamRuntime: both resolutions, the coarse CNN ahead, the gated chain.

::

    capture ─► preprocess (crop + 112) ─► coarse_cnn (112) ─► chain: coarse_step ─► [224 ─► fine_cnn ─► fine_step]
                                                                      (serial: the gate needs the last fine state)

The stateless coarse CNN runs ahead of the serial chain on later frames; the fine CNN runs inside the
chain because whether it runs at all depends on the gate of the same step (policies.GatedPolicy). The
fine input is made there too, from the crop the work item carries, and only when the gate asks for it.

When every role runs on a TensorRT engine of one GPU, the same stages run device/liteeval.py's plan instead: the coarse
stage leaves its feature on the device (a ring slot) and the chain reads it there, the state stays on the
device between steps, and only the gate and the logits come back.
"""
from __future__ import annotations

import functools
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np

from ..bundle import Bundle
from ..preprocess import check_frame
from ..families import liteeval as rules
from .device import liteeval as device_plan
from .device import preprocess as device_pre
from .policies import GatedPolicy
from .prediction import Prediction, frame_image, predict
from .stages import Stages
from .stats import StreamStats, timed
from .threads import ALL


class _Work:
    """One frame on its way through the stages."""

    __slots__ = ("frame", "crop", "coarse_input", "feat_c")  # feat_c: an array, or a DeviceFeature

    def __init__(self, frame: Any, crop: np.ndarray, coarse_input: np.ndarray):
        self.frame = frame
        self.crop = crop  # uint8 crop×crop×3: the fine input is made from it on fine steps only
        self.coarse_input: Optional[np.ndarray] = coarse_input
        self.feat_c: Any = None


class GatedStages(Stages):
    """The stage functions over active sessions; each is called by one thread at a time.

    Stream options (families.liteeval): ``fine_cap``, ``fine_window`` (override the bundle's policy, see GatedPolicy).
    """

    # intra-op threads per role (threads.py; the rest: every core sequential, one pipelined). The
    # recurrent steps are too small to split (a second thread doubles their 0.03 ms); pipelined, the
    # serial chain is the bottleneck, so its fine CNN takes every core while the stages ahead wait on
    # the full queue in front of it (2 cores, demo bundle: 172 FPS; every graph at one thread 138, all
    # at two 168)
    THREADS = {"sequential": {"coarse_step": 1, "fine_step": 1}, "pipelined": {"fine_cnn": ALL}}

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
        self.fine_pre = Preprocessor(bundle.preprocess)  # the chain's own: a Preprocessor belongs to one thread
        self.coarse_cnn = sessions["coarse_cnn"]
        self.stats = stats
        self.device: Optional[device_plan.DeviceChain] = None
        on_device = device_plan.on_device(sessions)
        # GPU preprocessing writes both CNN inputs from one upload of the decoded frame (device/preprocess.py)
        self.gpu_pre = device_pre.choose(plan.get("preprocess", "auto"), bundle, sessions, on_device,
                                         {"coarse": "coarse_cnn", "fine": "fine_cnn"})
        stats.set(preprocess=self.gpu_pre.describe() if self.gpu_pre else dict(device_pre.CPU))
        if on_device:
            self.device = device_plan.DeviceChain(bundle, sessions, plan, record=stats.add_stage, gpu_pre=self.gpu_pre)
            self.policy: GatedPolicy = self.device.policy
        else:
            self.policy = GatedPolicy(bundle, sessions, record=stats.add_stage, plan=plan)

    def as_list(self) -> List[Tuple[str, Any]]:
        return [("preprocess", self.preprocess), ("coarse", self.coarse), ("chain", self.chain)]

    def preprocess(self, frame: Any) -> _Work:
        if self.gpu_pre is not None:  # the decoded image goes up as it is; the coarse stage's plan prepares it
            return _Work(frame, None, check_frame(frame_image(frame)))
        crop = self.pre.crop(frame_image(frame))  # a new array: the work item owns it
        # the preprocessor reuses its output buffers: queued work must own its input
        return _Work(frame, crop, np.array(self.pre.input(crop, self.coarse_size)))

    def close(self) -> None:
        if self.gpu_pre is not None:
            self.gpu_pre.deactivate()

    def coarse(self, work: _Work) -> _Work:
        if self.device is not None:
            work.feat_c = self.device.coarse(work.coarse_input)  # stays on the GPU
        else:
            out = timed(self.stats.add_stage, "coarse_cnn", self.coarse_cnn.infer, {"frame": work.coarse_input})
            work.feat_c = np.array(out["feat"])
        work.coarse_input = None  # used: free it while the item waits for the chain
        return work

    def chain(self, work: _Work) -> Tuple[Prediction, float]:
        frame = work.frame
        # called by the policy on fine steps only; its buffer is reused at the next fine step, after
        # fine_cnn has read it
        fine_input = None if work.crop is None else functools.partial(self.fine_pre.input, work.crop, self.fine_size)
        logits, path = self.policy.step(work.feat_c, fine_input, frame.timestamp)
        self.stats.add_step(path, self.policy.last_capped)
        self.stats.set(resets=self.policy.resets)
        return predict(frame, logits, self.labels, path), frame.captured
