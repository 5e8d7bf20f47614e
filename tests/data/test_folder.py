from __future__ import annotations

import numpy as np
import pytest

from edgevid.errors import DataError
from edgevid.data import VideoFolder, frame_indices, write_video

from .conftest import frame_index, indexed_frames


def make_tree(root, spec):
    """spec: {class: [number of frames of each video]} -> videos written at 10 fps."""
    for cls, lengths in spec.items():
        for i, n in enumerate(lengths):
            write_video(root / cls / ("v%d.avi" % i), indexed_frames(n, 32, 40), fps=10)
    return root


def test_labels_follow_sorted_class_folders(tmp_path):
    root = make_tree(tmp_path / "ds", {"zoom": [8], "apple": [8, 8], "mid": [8]})
    (root / "apple" / "notes.txt").write_text("not a video")
    (root / "apple" / ".v9.avi.tmp.avi").write_bytes(b"half written")
    (root / ".hidden").mkdir()
    ds = VideoFolder(root, num_frames=4)
    assert ds.classes == ["apple", "mid", "zoom"]
    assert [(p.parent.name, label) for p, label in ds.samples] == [
        ("apple", 0), ("apple", 0), ("mid", 1), ("zoom", 2)]
    assert len(ds) == 4
    frames, label = ds[3]
    assert label == 2 and frames.shape == (4, 32, 40, 3) and frames.dtype == np.uint8


def test_uniform_sampling_and_short_video_padding(tmp_path):
    root = make_tree(tmp_path / "ds", {"a": [16, 3]})
    ds = VideoFolder(root, num_frames=4)
    long, _ = ds[0]
    assert [frame_index(f) for f in long] == [2, 6, 10, 14]
    short, _ = ds[1]
    assert [frame_index(f) for f in short] == [0, 1, 2, 2]


def test_fps_resampling_before_sampling(tmp_path):
    root = make_tree(tmp_path / "ds", {"a": [20]})  # 2 s at 10 fps
    frames, _ = VideoFolder(root, num_frames=4, fps=2)[0]  # 4 frames at 2 fps: 0, 5, 10, 15
    assert [frame_index(f) for f in frames] == [0, 5, 10, 15]


def test_frame_indices():
    assert frame_indices(10, 5) == [1, 3, 5, 7, 9]
    assert frame_indices(4, 4) == [0, 1, 2, 3]
    assert frame_indices(1, 3) == [0, 0, 0]
    with pytest.raises(DataError):
        frame_indices(0, 3)


def test_missing_root(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        VideoFolder(tmp_path / "nope", 4)


def test_root_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(DataError, match="not a folder"):
        VideoFolder(tmp_path / "f", 4)


def test_no_class_folders(tmp_path):
    (tmp_path / "loose.avi").write_bytes(b"x")
    with pytest.raises(DataError, match="no class folders"):
        VideoFolder(tmp_path, 4)


def test_empty_class_folder_is_named(tmp_path):
    root = make_tree(tmp_path / "ds", {"a": [4]})
    (root / "b_empty").mkdir()
    with pytest.raises(DataError, match="b_empty"):
        VideoFolder(root, 4)


def test_unreadable_video_is_named(tmp_path):
    root = make_tree(tmp_path / "ds", {"a": [4]})
    (root / "a" / "zero.avi").write_bytes(b"")
    (root / "a" / "junk.avi").write_bytes(b"\x00garbage" * 100)
    ds = VideoFolder(root, 4)
    by_name = {p.name: i for i, (p, _) in enumerate(ds.samples)}
    with pytest.raises(DataError, match="zero.avi"):
        ds[by_name["zero.avi"]]
    with pytest.raises(DataError, match="junk.avi"):
        ds[by_name["junk.avi"]]
    assert ds[by_name["v0.avi"]][0].shape == (4, 32, 40, 3)


def test_bad_num_frames(tmp_path):
    root = make_tree(tmp_path / "ds", {"a": [4]})
    with pytest.raises(DataError, match="num_frames"):
        VideoFolder(root, 0)
