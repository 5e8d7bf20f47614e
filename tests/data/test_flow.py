"""Optical flow as a modality (edgevid/data/flow.py): the image of a known motion, no motion at a stream's start,
and clear errors for bad settings and frames."""
from __future__ import annotations

import numpy as np
import pytest

from edgevid.data.flow import FlowSpec, FlowStream, flow_image
from edgevid.errors import ConfigError, FrameError

cv2 = pytest.importorskip("cv2")


def textured(h=96, w=128, seed=0):
    rng = np.random.RandomState(seed)
    small = rng.randint(0, 255, (h // 8, w // 8, 3), np.uint8)
    return cv2.GaussianBlur(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC), (5, 5), 0)


def test_the_flow_image_maps_motion_to_the_documented_values():
    flow = np.array([[[0.0, 0.0], [-4.0, 4.0], [16.0, 0.0], [40.0, 0.0]]], np.float32)
    image = flow_image(flow, bound=16.0)
    assert image[0, 0].tolist() == [128, 128, 0]  # no motion: mid-grey, zero magnitude
    # u, v: 128 ± 127·4/16 = 96.25, 159.75; |f| = 4√2 = a quarter of 16√2: 63.75
    assert image[0, 1].tolist() == [96, 160, 64]
    assert image[0, 2].tolist() == [255, 128, 180]  # |f| = 16 of 16√2: 180.3
    assert image[0, 3].tolist() == [255, 128, 255]  # clipped at the bound


@pytest.mark.parametrize("method", ["dis", "farneback"])
def test_a_shifted_pattern_gives_its_motion(method):
    frame = textured()
    moved = np.roll(frame, 3, axis=1)  # everything 3 px to the right
    stream = FlowStream(FlowSpec(method=method, bound=8.0))
    first = stream(frame)
    assert first.shape == frame.shape and (first[..., :2] == 128).all() and (first[..., 2] == 0).all()
    image = stream(moved)
    inner = image[16:-16, 16:-16].astype(float)
    u = (inner[..., 0] - 128) / 127 * 8
    v = (inner[..., 1] - 128) / 127 * 8
    assert abs(np.median(u) - 3.0) < 0.7 and abs(np.median(v)) < 0.7


def test_after_a_reset_the_next_frame_has_no_motion():
    stream = FlowStream()
    stream(textured())
    stream.reset()
    assert (stream(textured(seed=1))[..., 2] == 0).all()


def test_bad_settings_and_frames_are_refused():
    with pytest.raises(ConfigError, match="flow method 'tvl1'"):
        FlowSpec(method="tvl1")
    with pytest.raises(ConfigError, match="flow bound"):
        FlowSpec(bound=0)
    stream = FlowStream()
    stream(textured())
    with pytest.raises(FrameError, match="follows one of"):
        stream(textured(64, 64))
    with pytest.raises(FrameError):
        stream(np.zeros((96, 128), np.uint8))
    with pytest.raises(FrameError, match="H×W×2"):
        flow_image(np.zeros((4, 4, 3), np.float32), 16.0)


def test_a_data_set_gives_flow_clips_the_stream_would_see(tmp_path):
    from edgevid.data.flow import flow_frames
    from edgevid.data.folder import VideoFolder
    from edgevid.data.synthetic import generate_dataset
    from edgevid.data.video import read_video

    root = generate_dataset(tmp_path / "data", videos_per_class=1, num_frames=8, size=64,
                            classes=["rise", "stripes_h"], seed=1)
    colour = VideoFolder(root, num_frames=4)
    flow = VideoFolder(root, num_frames=4, flow=FlowSpec())
    for i in range(len(flow)):
        clip, label = flow[i]
        frames, y = colour[i]
        assert clip.shape == frames.shape and clip.dtype == np.uint8 and label == y
    # the clip's images are the stream's: each picked frame against the decoded one before it
    decoded, _ = read_video(flow.samples[0][0])
    picked = [int((k + 0.5) * len(decoded) / 4) for k in range(4)]
    stream = FlowStream(FlowSpec())
    stream(decoded[picked[1] - 1])
    np.testing.assert_array_equal(flow[0][0][1], stream(decoded[picked[1]]))
    np.testing.assert_array_equal(flow_frames(decoded, [0], FlowSpec())[0][..., 2], 0)  # nothing before frame 0
    assert flow[0][0][1:, ..., 2].mean() > 0  # "rise" moves


def test_a_synthetic_motion_clip_has_motion_in_its_flow_and_a_texture_clip_has_none():
    from edgevid.data.synthetic import FINE_CLASSES, MOTION_CLASSES, make_video

    spec = FlowSpec("dis", 8.0, 64)
    moving = make_video(MOTION_CLASSES[0], 1, num_frames=6, size=128, flow=spec)
    still = make_video(FINE_CLASSES[0], 1, num_frames=6, size=128, flow=spec)
    assert moving.shape == (6, 64, 64, 3) and moving.dtype == np.uint8
    assert (moving[0] == [128, 128, 0]).all() and (still[0] == [128, 128, 0]).all()  # no frame before the first
    # magnitude channel: the moving object shows up, the static texture (up to camera shake and noise) much less
    assert moving[1:, ..., 2].mean() > 2 * still[1:, ..., 2].mean() + 1


def test_flow_is_computed_at_the_recorded_short_side_whatever_the_camera_resolution():
    from edgevid.errors import ConfigError

    spec = FlowSpec("dis", 16.0, 48)
    rng = np.random.default_rng(0)
    for h, w in ((96, 128), (240, 320)):
        stream = FlowStream(spec)
        base = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        stream(base)
        assert stream(np.roll(base, 2, axis=1)).shape == (48, 64, 3)
    assert FlowSpec.from_dict(spec.to_dict()) == spec
    for bad in ({"method": "dis", "speed": 2}, "dis", {"method": "dis", "size": 4}, {"method": "dis", "size": 1.5}):
        with pytest.raises(ConfigError):
            FlowSpec.from_dict(bad)
