"""Data for edgevid: a deterministic synthetic motion data set and stream, class-folder video data sets.

Nothing here imports torch, and OpenCV is imported only when a function needs it, so the synthetic
stream also serves as a frame source on the device.
"""
from __future__ import annotations

from .folder import VideoFolder, frame_indices
from .synthetic import (
    CLASSES, FINE_CLASSES, MOTION_CLASSES, SyntheticStream, frame_labels, generate_dataset, generate_stream,
    labels_path, make_scene, make_video, read_stream_labels, video_params,
)
from .video import VIDEO_EXTENSIONS, iter_video, probe_video, read_video, write_video

__all__ = [
    "CLASSES", "FINE_CLASSES", "MOTION_CLASSES", "SyntheticStream", "VIDEO_EXTENSIONS", "VideoFolder",
    "frame_indices", "frame_labels", "generate_dataset", "generate_stream", "iter_video", "labels_path", "make_scene",
    "make_video", "probe_video", "read_stream_labels", "read_video", "video_params", "write_video",
]
