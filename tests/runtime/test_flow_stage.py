"""The runtime's flow stage (edgevid/runtime/flow.py): the flow images a flow bundle's stages see, and where the flow
starts again (no motion): a gap in stream time, time going back, a new frame size, a scene cut."""
from __future__ import annotations

import numpy as np
import pytest

from edgevid.data.flow import FlowSpec, FlowStream
from edgevid.runtime.flow import FlowStage
from edgevid.runtime.source import Frame

pytest.importorskip("cv2")

SETTINGS = {"method": "dis", "bound": 16.0, "size": 64}
NEUTRAL = np.array([128, 128, 0])


def scene(seed, h=96, w=128):
    import cv2

    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), (7, 7), 0)


def moving(seed, n, start=0, t0=0.0, h=96, w=128):
    base = scene(seed, h, w)
    return [Frame(start + i, t0 + 0.1 * i, np.ascontiguousarray(np.roll(base, 2 * i, axis=1)), 0.0) for i in range(n)]


def still(image):
    return bool((image == NEUTRAL).all())


def test_the_stage_gives_the_flow_images_of_a_flow_stream():
    frames = moving(0, 5)
    stage, stream = FlowStage(SETTINGS), FlowStream(FlowSpec(**SETTINGS))
    for f in frames:
        out = stage(f)
        assert out.index == f.index and out.timestamp == f.timestamp and out.colour is f.image
        np.testing.assert_array_equal(out.image, stream(f.image))
    assert stage.restarts == 0


def test_the_flow_starts_again_after_a_gap_time_going_back_or_a_new_size():
    stage = FlowStage(SETTINGS, max_gap_s=1.0)
    outs = [stage(f) for f in moving(0, 3) + moving(0, 3, start=3, t0=5.0) + moving(0, 2, start=6, t0=0.0)
            + moving(0, 2, start=8, t0=9.0, h=120, w=160)]
    assert [still(o.image) for o in outs] == [True, False, False, True, False, False, True, False, True, False]
    assert stage.restarts == 3


def test_a_scene_cut_restarts_the_flow_only_with_a_threshold():
    dark = [Frame(f.index, f.timestamp, f.image // 4, 0.0) for f in moving(1, 4, start=4, t0=0.4)]
    frames = moving(0, 4) + dark  # another scene from frame 4
    with_cut, without = FlowStage(SETTINGS, scene_cut=0.05), FlowStage(SETTINGS)
    cut = [still(with_cut(f).image) for f in frames]
    assert cut == [True, False, False, False, True, False, False, False] and with_cut.restarts == 1
    assert [still(without(f).image) for f in frames][4] is False and without.restarts == 0
