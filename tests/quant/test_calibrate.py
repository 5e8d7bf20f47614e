"""Calibration feeds: recorded through the runtime's own policy, stored as bundle artifacts with their recipe
and data hash, refused when missing, stale, too few or from a bad recipe. Device-side: no torch."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgevid.bundle import MANIFEST, load_bundle
from edgevid.errors import CalibrationError
from tests.helpers import bundles as fixture_bundles

pytest.importorskip("onnxruntime")
pytest.importorskip("cv2")

from edgevid.quant import calibrate, load_feeds, load_recipe  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
STREAM = "synthetic:seed=3,segments=3,frames=16,fps=10"


def copy(tmp_path, name):
    dst = tmp_path / name
    shutil.copytree(str(fixture_bundles.FIXTURES / name), str(dst))
    return dst


def recipe(**over):
    base = {"name": "t", "streams": [STREAM], "max_frames": 40, "min_samples": 4}
    base.update(over)
    return base


def test_liteeval_feeds_follow_the_gate_and_carry_state(tmp_path):
    root = copy(tmp_path, fixture_bundles.LITEEVAL["mixed"])
    result = calibrate(root, recipe())
    bundle = load_bundle(root)
    assert result.frames == 40 and result.samples["coarse_cnn"] == result.samples["coarse_step"] == 40
    fine = result.samples["fine_cnn"]
    assert 0 < fine < 40 and result.samples["fine_step"] == fine  # only the frames the gate sent
    step = load_feeds(bundle, "coarse_step")
    assert step["feat_c"].shape == (40, 1280) and not step["h_c_in"][0].any() and step["h_c_in"][1:].any(axis=1).all()
    art = bundle.graph("fine_cnn").find("calibration")[0]
    assert art.file == "calibration/fine_cnn.npz" and art.info["recipe"] == "t"
    assert art.info["source_sha256"] == bundle.graph("fine_cnn").sha256 and art.info["samples"] == fine
    assert art.info["data_sha256"] == result.data_sha256 and len(result.data_sha256) == 64
    # the same frames give the same data hash; other frames another one
    again = calibrate(copy(tmp_path / "b", fixture_bundles.LITEEVAL["mixed"]), recipe())
    other = calibrate(copy(tmp_path / "c", fixture_bundles.LITEEVAL["mixed"]),
                      recipe(streams=["synthetic:seed=4,segments=3,frames=16,fps=10"]))
    assert again.data_sha256 == result.data_sha256 != other.data_sha256


def test_prernn_step_feeds_carry_the_state_and_restart_per_stream(tmp_path):
    root = copy(tmp_path, fixture_bundles.PRERNN["lstm"])
    streams = [STREAM, "synthetic:seed=9,segments=2,frames=8,fps=10"]
    calibrate(root, recipe(streams=streams, max_frames=None))
    feeds = load_feeds(load_bundle(root), "step")
    starts = np.flatnonzero(np.diff(feeds["_stream"])) + 1
    assert feeds["h_in"].shape[0] == 48 + 16 and list(starts) == [48]
    assert not feeds["h_in"][0].any() and not feeds["h_in"][48].any()  # zero state at each stream's start
    assert feeds["h_in"][1:48].any(axis=1).all() and feeds["c_in"][49:].any(axis=1).all()


def test_slowfast_feeds_are_the_clips_of_the_ring_buffer(tmp_path):
    root = copy(tmp_path, fixture_bundles.CLIP)
    result = calibrate(root, recipe(max_frames=None, min_samples=2))
    bundle = load_bundle(root)
    clips = load_feeds(bundle, "clip")["clip"]
    assert clips.shape[1:] == tuple(bundle.graph("clip").inputs[0].shape[1:]) and clips.shape[0] == result.samples["clip"]


def test_max_samples_keeps_calls_evenly_spaced(tmp_path):
    root = copy(tmp_path, fixture_bundles.PRERNN["gru"])
    result = calibrate(root, recipe(max_samples={"*": 10, "step": 40}))
    bundle = load_bundle(root)
    assert load_feeds(bundle, "backbone")["frame"].shape[0] == 10 and load_feeds(bundle, "step")["h_in"].shape[0] == 40
    assert bundle.graph("backbone").find("calibration")[0].info["calls"] == result.samples["backbone"] == 40


def test_too_few_samples_say_how_to_get_more_and_change_nothing(tmp_path):
    root = copy(tmp_path, fixture_bundles.LITEEVAL["mixed"])
    manifest = (root / MANIFEST).read_bytes()
    with pytest.raises(CalibrationError, match=r"too few calibration samples: fine_cnn \d+ of 39.*Stream more frames"):
        calibrate(root, recipe(min_samples={"*": 4, "fine_cnn": 39}))
    assert (root / MANIFEST).read_bytes() == manifest and not (root / "calibration").exists()


def test_int8_without_feeds_and_stale_feeds_are_refused(tmp_path):
    root = copy(tmp_path, fixture_bundles.PRERNN["vrnn"])
    with pytest.raises(CalibrationError, match="no calibration feeds for role step.*edgevid calibrate"):
        load_feeds(load_bundle(root), "step")
    calibrate(root, recipe())
    data = json.loads((root / MANIFEST).read_text())
    data["roles"]["step"]["artifacts"][0]["sha256"] = "0" * 64  # as if step.onnx were re-exported
    (root / MANIFEST).write_text(json.dumps(data))
    with pytest.raises(CalibrationError, match="stale"):
        load_feeds(load_bundle(root, verify=False), "step")


@pytest.mark.parametrize("bad, message", [
    ({"streams": [STREAM], "frames": 10}, "unknown keys \\['frames'\\]"),
    ({"streams": ["missing.mp4"]}, "missing.mp4 does not exist"),
    ({}, "names no frames"),
    ({"streams": [STREAM], "max_frames": 0}, "max_frames=0"),
    ({"videos": "empty"}, "cannot use .*empty for calibration"),
])
def test_bad_recipes(tmp_path, bad, message):
    (tmp_path / "empty").mkdir()
    path = tmp_path / "r.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(CalibrationError, match=message):
        load_recipe(path)


def test_a_recipe_of_another_family_is_refused(tmp_path):
    root = copy(tmp_path, fixture_bundles.CLIP)
    with pytest.raises(CalibrationError, match="recipe t is for liteeval bundles"):
        calibrate(root, recipe(family="liteeval"))


def test_videos_of_a_class_folder_data_set_are_each_a_stream(tmp_path):
    from tests.helpers.tiny_liteeval import write_video

    for cls in ("a", "b"):
        (tmp_path / "data" / cls).mkdir(parents=True)
        for i in range(2):
            write_video(tmp_path / "data" / cls / ("%d.avi" % i), frames=6, seed=i)
    (tmp_path / "r.json").write_text(json.dumps({"videos": "data", "max_videos": 3, "seed": 1, "min_samples": 2}))
    r = load_recipe(tmp_path / "r.json")
    assert len(r.streams) == 3 and all(s.endswith(".avi") for s in r.streams)
    result = calibrate(copy(tmp_path, fixture_bundles.PRERNN["lstm"]), r)
    assert result.streams == 3 and result.frames == 18


def test_the_cli_and_the_shipped_recipes(tmp_path, edgevid_cli, capsys):
    for family in ("liteeval", "slowfast", "prernn"):
        r = load_recipe(ROOT / "calibration" / ("%s.json" % family))
        assert r.family == family and r.streams and r.max_frames
    root = copy(tmp_path, fixture_bundles.PRERNN["lstm"])
    assert edgevid_cli(["calibrate", str(root), "--recipe", str(ROOT / "calibration" / "prernn.json")]) == 0
    out = capsys.readouterr().out
    assert "calibration prernn-synthetic: 600 frames" in out and "calibration/step.npz" in out
    assert edgevid_cli(["calibrate", str(root), "--recipe", str(ROOT / "calibration" / "liteeval.json")]) == 9
    assert "is for liteeval bundles" in capsys.readouterr().err
