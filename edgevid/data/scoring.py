"""Scoring predictions of a stream against its ground truth (segments of the synthetic stream, or a
``<video>.labels.json`` sidecar): per segment and per frame, by class name."""
from __future__ import annotations

from typing import Any, Dict, List


def score_stream(predictions: List[Dict[str, Any]], segments: List[Dict[str, Any]]) -> Dict[str, Any]:
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
    }
