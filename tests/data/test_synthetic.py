from __future__ import annotations

import collections
import json

import numpy as np
import pytest

from edgevid.errors import DataError
from edgevid.data import (
    CLASSES, FINE_CLASSES, MOTION_CLASSES, SyntheticStream, VideoFolder, frame_labels, generate_dataset,
    generate_stream, labels_path, make_video, probe_video, read_stream_labels, read_video, video_params,
)
from edgevid.data import _render, synthetic


def test_class_list():
    assert 8 <= len(CLASSES) <= 10 and len(set(CLASSES)) == len(CLASSES)
    assert sorted(MOTION_CLASSES + FINE_CLASSES) == sorted(CLASSES)
    assert all(c.replace("_", "").isalpha() and c == c.lower() for c in CLASSES)


def test_same_seed_same_pixels_other_seed_other_pixels():
    a = make_video("rotate_cw", seed=3, num_frames=6, size=128)
    assert a.shape == (6, 128, 128, 3) and a.dtype == np.uint8
    assert np.array_equal(a, make_video("rotate_cw", seed=3, num_frames=6, size=128))
    assert not np.array_equal(a, make_video("rotate_cw", seed=4, num_frames=6, size=128))


def test_classes_differ_and_frames_move():
    clips = {c: make_video(c, seed=1, num_frames=4, size=96) for c in CLASSES}
    for i, a in enumerate(CLASSES):
        for b in CLASSES[i + 1:]:
            assert not np.array_equal(clips[a], clips[b]), (a, b)
    for c, clip in clips.items():
        assert not np.array_equal(clip[0], clip[-1]), c


def test_unknown_class_and_bad_counts():
    with pytest.raises(DataError, match="unknown synthetic class"):
        make_video("dance", 0)
    with pytest.raises(DataError, match="num_frames"):
        make_video("grow", 0, num_frames=0)
    with pytest.raises(DataError, match="size"):
        make_video("grow", 0, size="big")


PER_CLIP = ("smooth_field", "grating", "checks", "colorize", "disc_mask", "NoiseBank")  # drawn when the scene is built
PER_FRAME = ("composite", "apply")  # what a frame costs: compositing the actors, adding pre-drawn noise


def test_a_clip_is_drawn_once_and_a_frame_only_composites(monkeypatch):
    """What keeps rendering cheap, checked by what runs rather than by a stopwatch (timing belongs to the
    benchmarks): backgrounds, textures, masks and noise fields are drawn once per clip, whatever its length;
    a frame composites each actor once and adds noise once."""
    calls = collections.Counter()

    def count(owner, name, key):
        real = getattr(owner, name)

        def counted(*args, **kwargs):
            calls[key] += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(owner, name, counted)

    for name in PER_CLIP[:-1] + ("composite",):
        count(_render, name, name)
    count(_render.NoiseBank, "__init__", "NoiseBank")
    count(_render.NoiseBank, "apply", "apply")
    for c in CLASSES:
        seen = {}
        for frames in (2, 8):
            calls.clear()
            clip = make_video(c, 0, num_frames=frames, size=96)
            assert clip.shape == (frames, 96, 96, 3)
            seen[frames] = dict(calls)
        actors = seen[2]["composite"] // 2
        assert actors >= 1 and seen[2]["composite"] == 2 * actors and seen[8]["composite"] == 8 * actors, c
        assert seen[2]["apply"] == 2 and seen[8]["apply"] == 8, c
        per_clip = {k: v for k, v in seen[8].items() if k in PER_CLIP}
        assert per_clip == {k: v for k, v in seen[2].items() if k in PER_CLIP} and per_clip["NoiseBank"] == 1, c


def test_fine_textures_share_their_mean_and_vanish_at_half_resolution():
    """The design claim behind the fine classes, on the textures themselves."""
    import cv2

    for period in (2.0, 3.0, 4.0, 6.0):
        pats = [_render.grating(48, period, 0.0), _render.grating(48, period, 90.0), _render.checks(48, period)]
        means = [p.mean() for p in pats]
        assert max(means) - min(means) < 0.02, (period, means)
    for pat in (_render.grating(48, 2.0, 0.0), _render.grating(48, 2.0, 90.0), _render.checks(48, 2.0)):
        assert pat.std() > 0.45  # full contrast at 224
        half = cv2.resize(pat, (24, 24), interpolation=cv2.INTER_AREA)
        assert half.std() < 0.01  # flat at 112


def test_fine_tile_texture_is_pixel_exact_in_the_frame():
    # period 2 stripes in a frame: neighbouring columns alternate strongly inside the tile
    for seed in range(50):
        if video_params("stripes_v", seed)["period"] == 2.0 and video_params("stripes_v", seed)["noise"] < 8:
            break
    frame = make_video("stripes_v", seed, num_frames=1)[0].astype(np.int32)
    col_diff = np.abs(np.diff(frame, axis=1)).sum(axis=2)
    assert col_diff.max() > 40 and np.percentile(col_diff, 99) > 40


def test_generate_dataset_is_read_back_by_video_folder(tmp_path):
    calls = []
    root = generate_dataset(tmp_path / "syn", videos_per_class=2, num_frames=4, fps=10, size=64,
                            seed=5, progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (2 * len(CLASSES), 2 * len(CLASSES))
    ds = VideoFolder(root, num_frames=4)
    assert ds.classes == CLASSES  # same label indices as the synthetic classes and stream sidecars
    assert len(ds) == 2 * len(CLASSES)
    for path, label in ds.samples:
        assert path.name.startswith(ds.classes[label] + "_")
    frames, label = ds[0]
    assert frames.shape == (4, 64, 64, 3)
    assert probe_video(ds.samples[0][0])["fps"] == pytest.approx(10)
    # lossless and deterministic: the file holds exactly the clip that make_video draws
    again = generate_dataset(tmp_path / "syn2", videos_per_class=2, num_frames=4, size=64, seed=5)
    f1, _ = read_video(root / "grow" / "grow_1.avi")
    f2, _ = read_video(again / "grow" / "grow_1.avi")
    assert np.array_equal(f1, f2)
    with pytest.raises(DataError, match="already exists"):
        generate_dataset(root, videos_per_class=1, num_frames=2, size=64)


def test_generate_dataset_failure_leaves_nothing(tmp_path, monkeypatch):
    real = synthetic.write_video
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(synthetic, "write_video", flaky)
    with pytest.raises(OSError):
        generate_dataset(tmp_path / "syn", videos_per_class=2, num_frames=2, size=64)
    assert list(tmp_path.iterdir()) == []


def test_stream_file_and_sidecar_agree(tmp_path):
    path = generate_stream(tmp_path / "s.avi", num_segments=5, segment_frames=6, fps=12, seed=2, size=64)
    truth = read_stream_labels(path)
    assert truth == read_stream_labels(labels_path(path))
    assert truth["fps"] == 12 and truth["classes"] == CLASSES and truth["num_frames"] == 30
    segs = truth["segments"]
    assert segs[0]["start"] == 0 and segs[-1]["end"] == 30
    assert all(a["end"] == b["start"] for a, b in zip(segs, segs[1:]))
    frames, fps = read_video(path)
    assert len(frames) == 30 and fps == pytest.approx(12)
    per_frame = frame_labels(segs, len(frames))
    assert None not in per_frame
    assert per_frame == [s["label"] for s in segs for _ in range(s["end"] - s["start"])]
    assert all(CLASSES[s["label"]] == s["class"] for s in segs)
    # the file holds exactly the in-memory stream, and each segment is the clip of its class
    stream = SyntheticStream(5, 6, fps=12, seed=2, size=64)
    assert stream.segments == segs
    assert np.array_equal(np.stack(list(stream)), frames)


def test_in_memory_stream_replays_and_labels_every_frame():
    stream = SyntheticStream(num_segments=4, segment_frames=3, fps=10, seed=9, size=48)
    first = np.stack(list(stream))
    assert first.shape == (12, 48, 48, 3) and len(stream) == 12
    assert np.array_equal(first, np.stack(list(stream)))
    assert frame_labels(stream.segments, 14)[-2:] == [None, None]
    assert len({s["label"] for s in SyntheticStream(40, 1, seed=1).segments}) > 5
    with pytest.raises(DataError, match="fps"):
        SyntheticStream(2, 2, fps=0)


def test_stream_labels_errors(tmp_path):
    with pytest.raises(DataError, match="no ground truth"):
        read_stream_labels(tmp_path / "missing.avi")
    side = tmp_path / "x.avi.labels.json"
    side.write_text("{not json")
    with pytest.raises(DataError, match="malformed"):
        read_stream_labels(tmp_path / "x.avi")
    side.write_text(json.dumps({"fps": 10, "classes": ["a"], "segments": [
        {"start": 0, "end": 4, "label": 0}, {"start": 5, "end": 8, "label": 0}]}))
    with pytest.raises(DataError, match="inconsistent"):
        read_stream_labels(side)


@pytest.mark.parametrize("cls", FINE_CLASSES)
def test_two_pixel_textures_vanish_in_the_coarse_view_only(cls):
    """A 2 px tile and a flat tile of its mean colour look the same at 112 px, not at 224 px."""
    import cv2

    from edgevid.preprocess import Preprocessor
    from edgevid.spec import PreprocessSpec

    seed = next(s for s in range(200) if video_params(cls, s, 3)["period"] == 2.0)
    textured, flat = synthetic.make_scene(cls, seed, 3), synthetic.make_scene(cls, seed, 3)
    for actor in flat.actors:
        actor.sprite = np.broadcast_to(actor.sprite.mean(axis=(0, 1)), actor.sprite.shape)
    pre = Preprocessor(PreprocessSpec(sizes=(224, 112)))
    for t in range(3):
        fine_a, fine_b = pre.crop(textured.frame(t)), pre.crop(flat.frame(t))
        coarse_a, coarse_b = (cv2.resize(f, (112, 112), interpolation=cv2.INTER_AREA) for f in (fine_a, fine_b))
        fine_diff = np.abs(fine_a.astype(int) - fine_b.astype(int))
        coarse_diff = np.abs(coarse_a.astype(int) - coarse_b.astype(int))
        assert fine_diff.max() > 40            # the texture is there at 224 px
        assert coarse_diff.max() <= 2 and coarse_diff.mean() < 0.1  # and gone at 112 px


def test_stream_segments_of_training_length_clips():
    """clip_frames: a long segment is consecutive clips of its class, each moving at a short clip's speed."""
    long = list(SyntheticStream(2, 16, seed=1, size=48, clip_frames=8))
    short = list(SyntheticStream(2, 8, seed=1, size=48))
    stream = SyntheticStream(2, 16, seed=1, size=48, clip_frames=8)
    assert len(long) == 32 and [s["class"] for s in stream.segments] == [
        s["class"] for s in SyntheticStream(2, 8, seed=1).segments]
    for a, b in zip(long[:8], short[:8]):  # the first clip of a long segment is the short segment
        assert np.array_equal(a, b)
    assert not np.array_equal(long[8], long[0])  # then another clip of the same class
    assert stream.labels()["clip_frames"] == 8 and "clip_frames" not in SyntheticStream(2, 8).labels()


def test_stream_clip_frames_cut_to_the_segment():
    assert len(list(SyntheticStream(1, 10, seed=2, size=48, clip_frames=4))) == 10
