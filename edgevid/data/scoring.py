"""Scoring predictions of a stream against its ground truth (segments of the synthetic stream, or a
``<video>.labels.json`` sidecar): per segment, per frame and the delay after each action change, by class name."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np


def score_stream(predictions: List[Dict[str, Any]], segments: List[Dict[str, Any]],
                 fps: Optional[float] = None) -> Dict[str, Any]:
    """Accuracy against ground truth: per segment (prediction at its last frame) and per frame.

    Compared by class name: the bundle's label order (sorted class folders) need not be the
    generator's class order. Frames without a prediction (a clip window still filling) count as
    misses per segment and are left out per frame.
    """
    by_frame = {p["frame_index"]: p["label"] for p in predictions}
    frame_hits = frame_total = seg_hits = 0
    per_class: Dict[str, List[int]] = {}
    for seg in segments:
        for i in range(seg["start"], seg["end"]):
            if i in by_frame:
                frame_total += 1
                frame_hits += by_frame[i] == seg["class"]
        hit = int(by_frame.get(seg["end"] - 1) == seg["class"])
        seg_hits += hit
        per_class.setdefault(seg["class"], []).append(hit)
    return {
        "segment_accuracy": seg_hits / len(segments) if segments else None,
        "frame_accuracy": frame_hits / frame_total if frame_total else None,
        "segments": len(segments), "frames_scored": frame_total,
        "per_class_segment_accuracy": {c: sum(h) / len(h) for c, h in sorted(per_class.items())},
        "change_delay": change_delay(predictions, segments, fps),
    }


def change_delay(predictions: List[Dict[str, Any]], segments: List[Dict[str, Any]],
                 fps: Optional[float] = None) -> Dict[str, Any]:
    """How long after each action change the stream first labels the new action correctly.

    A change is a segment whose class differs from the one before it (the first segment is no change: the
    stream starts there). Its delay is the first frame of the segment whose prediction has the segment's
    class, counted from the segment's first frame (0: right at the change); in ms of stream time with
    ``fps``. A change never labelled correctly within its segment is ``missed``, not a delay. Summaries
    (mean, p50, p90, max) are None where no change was labelled correctly.
    """
    by_frame = {p["frame_index"]: p["label"] for p in predictions}
    delays: List[int] = []
    missed = 0
    for before, seg in zip(segments, segments[1:]):
        if seg["class"] == before["class"]:
            continue
        first = next((i for i in range(seg["start"], seg["end"]) if by_frame.get(i) == seg["class"]), None)
        if first is None:
            missed += 1
        else:
            delays.append(first - seg["start"])
    frames = _summary(delays)
    ms = {k: (None if v is None else 1000.0 * v / fps) for k, v in frames.items()} if fps else None
    return {"changes": len(delays) + missed, "missed": missed, "frames": frames, "ms": ms,
            "delays_frames": delays}


def _summary(values: List[int]) -> Dict[str, Optional[float]]:
    if not values:
        return {"mean": None, "p50": None, "p90": None, "max": None}
    arr = np.asarray(values, dtype=np.float64)
    p50, p90 = np.percentile(arr, [50, 90])
    return {"mean": float(arr.mean()), "p50": float(p50), "p90": float(p90), "max": float(arr.max())}
