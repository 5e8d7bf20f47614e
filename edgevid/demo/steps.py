"""What every demo shares: its synthetic data, step timings and the quick run's note (the family demos and the
fusion demo import from here, so nothing imports back into the package's __init__)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Dict

QUICK_NOTE = "quick run: a smoke test of the pipeline (tiny data, a few training steps); accuracy is not meaningful"


def timed(timings: Dict[str, float], name: str, fn, *args):
    """``fn(*args)``, its seconds recorded as ``timings[name]`` (the report's ``timings_s``)."""
    start = time.perf_counter()
    result = fn(*args)
    timings[name] = round(time.perf_counter() - start, 2)
    return result


def make_data(root: Path, s: Any, seed: int) -> Dict[str, Any]:
    """Train / val class folders of ``s.frames``-frame clips, the held-out stream of ``s.stream_frames``-frame
    segments (several clips long, as real actions are) and, with ``s.stress_segments``, a stress stream of
    ``s.frames``-frame segments (an action change every clip)."""
    from ..data.synthetic import CLASSES, generate_dataset, generate_stream

    generate_dataset(root / "train", s.train_per_class, num_frames=s.frames, fps=s.fps, seed=seed)
    generate_dataset(root / "val", s.val_per_class, num_frames=s.frames, fps=s.fps, seed=seed + 1000)
    # long segments are consecutive training-length clips of one class: the motion keeps its training speed
    stream = generate_stream(root / "stream.avi", s.stream_segments, s.stream_frames, fps=s.fps, seed=seed + 2000,
                             clip_frames=s.frames)
    stress = (generate_stream(root / "stress.avi", s.stress_segments, s.frames, fps=s.fps, seed=seed + 2500)
              if s.stress_segments else None)
    return {"root": root, "stream": stream, "stress": stress, "classes": list(CLASSES),
            "train_videos": s.train_per_class * len(CLASSES), "val_videos": s.val_per_class * len(CLASSES)}
