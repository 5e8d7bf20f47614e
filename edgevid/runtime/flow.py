"""The runtime's flow stage: a flow bundle's frames become optical-flow images before the family's stages see them.

A bundle whose ``preprocess.flow`` is set was trained on flow images (edgevid.data.flow): each frame against the
one before, made with the recorded method, bound and size. The stage makes the same images from the live stream,
in its own pipeline thread (on a Jetson's CPU the flow is the expensive part: ``benchmarks/flow_bench.py``)::

    capture ─► [flow] ─► family stages (the flow image in place of the colour image) ─► Prediction

The flow starts again ("no motion", as on the first frame of every training clip) where consecutive frames do not
show one scene moving: after a timestamp gap longer than the policy's ``max_gap_s``, when the time goes back (a
looped file), when the frame size changes (a camera that came back at another resolution) and, with the policy's
``scene_cut`` threshold (PreRNN), at a scene cut, where the recurrent state resets too (recurrent.SceneCut's
score: the same cut for both).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional, Tuple

import numpy as np

from .prediction import frame_image
from .recurrent import SceneCut
from .source import Frame


@dataclasses.dataclass
class FlowFrame(Frame):
    """A Frame whose ``image`` is the flow image; ``colour`` is the camera's picture it was made from."""

    colour: Optional[np.ndarray] = None


class FlowStage:
    """``stage(frame) -> frame`` with the image replaced by its flow image (``settings``: a bundle's
    ``preprocess.flow``). One stream at a time: called by one thread, in frame order."""

    def __init__(self, settings: Mapping[str, Any], max_gap_s: Optional[float] = None,
                 scene_cut: Optional[float] = None):
        from ..data.flow import FlowSpec, FlowStream

        self.spec = FlowSpec.from_dict(dict(settings))
        self.stream = FlowStream(self.spec)
        self.max_gap_s, self.scene_cut = max_gap_s, scene_cut
        self.cuts = SceneCut() if scene_cut is not None else None
        self.restarts = 0  # times the flow started again mid-stream (gap, time going back, new size, cut)
        self._last: Optional[Tuple[float, Tuple[int, ...]]] = None

    def __call__(self, frame: Any) -> Any:
        image = frame_image(frame)
        here = (float(frame.timestamp), image.shape)
        cut = self.cuts is not None and self.cuts(image) > self.scene_cut
        if self._last is not None and (cut or self._breaks(self._last, here)):
            self.stream.reset()
            self.restarts += 1
        self._last = here
        return FlowFrame(frame.index, frame.timestamp, self.stream(image), frame.captured, colour=image)

    def _breaks(self, last: Tuple[float, Tuple[int, ...]], here: Tuple[float, Tuple[int, ...]]) -> bool:
        step = here[0] - last[0]
        return here[1] != last[1] or step < 0 or (self.max_gap_s is not None and step > self.max_gap_s)


def flow_stage(bundle: Any, plan: Mapping[str, Any]) -> Optional[FlowStage]:
    """The flow stage of ``bundle`` (None for a colour bundle), restarting where its policy starts afresh
    (``max_gap_s``, ``scene_cut``)."""
    settings = getattr(bundle.preprocess, "flow", None)
    if settings is None:
        return None
    policy = plan.get("settings") or {}
    return FlowStage(settings, policy.get("max_gap_s"), policy.get("scene_cut"))
