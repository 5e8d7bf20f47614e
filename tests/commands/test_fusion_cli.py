"""`edgevid train fusion` and `edgevid run FUSION_BUNDLE` as a user types them, on the committed tiny bundles."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from edgevid.errors import ConfigError, DataError, ManifestError
from tests.helpers.bundles import CLIP, PRERNN, copy_bundle

pytest.importorskip("onnxruntime")
pytest.importorskip("cv2")
pytest.importorskip("scipy")

LABELS = ["wave", "walk", "jump"]


def edgevid(*args):
    return subprocess.run([sys.executable, "-m", "edgevid"] + [str(a) for a in args], capture_output=True,
                          text=True, timeout=300)


@pytest.fixture
def setup(tmp_path):
    from edgevid.data.video import write_video

    rng = np.random.default_rng(1)
    for k, name in enumerate(LABELS):
        for v in range(2):
            base = rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)
            write_video(tmp_path / "held" / name / ("v%d.avi" % v),
                        [np.roll(base, (k + 1) * t, axis=0) for t in range(10)], fps=10.0)
    return {"colour": copy_bundle(PRERNN["lstm"], tmp_path / "colour"), "clip": copy_bundle(CLIP, tmp_path / "clip"),
            "held": tmp_path / "held", "out": tmp_path / "fz"}


def train(s, *extra):
    return edgevid("train", "fusion", "--member", "colour=%s" % s["colour"], "--member", s["clip"],
                   "--data", s["held"], "--out", s["out"], *extra)


def test_train_then_run_a_fusion_bundle(setup, tmp_path):
    trained = train(setup)
    assert trained.returncode == 0, trained.stderr
    assert "fusion bundle: %s" % setup["out"] in trained.stdout
    assert "colour" in trained.stderr and "clip" in trained.stderr and "boost-c" in trained.stderr
    saved = json.loads((setup["out"] / "fusion.json").read_text())
    assert [m["name"] for m in saved["members"]] == ["colour", "clip"]  # NAME= and the folder's name

    stats = tmp_path / "stats.json"
    run = edgevid("run", setup["out"], "--source", "synthetic:segments=2,frames=10", "--json", "--stats", stats)
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(lines) == 20 and all(line["path"] == "fused" for line in lines)
    assert set(lines[-1]["members"]) == {"colour", "clip"} and lines[0]["members_ready"] == 1
    assert lines[-1]["label"] in LABELS
    written = json.loads(stats.read_text())
    assert written["family"] == "fusion" and set(written["members"]) == {"colour", "clip"}
    assert written["members"]["clip"]["family"] == "slowfast" and written["fusion"]["method"] == "boost-u"
    assert "fused boost-u" in run.stderr and "colour (prernn, colour)" in run.stderr

    info = edgevid("info", setup["out"])
    assert info.returncode == 0 and "boost-u, 2 members, 3 classes" in info.stdout and "../clip" in info.stdout
    as_json = json.loads(edgevid("info", setup["out"], "--json").stdout)
    assert as_json["members"][1]["family"] == "slowfast"

    text = edgevid("run", setup["out"], "--source", "synthetic:segments=1,frames=10", "--max-frames", "3")
    assert text.returncode == 0 and len(text.stdout.splitlines()) == 3 and "[colour " in text.stdout


def test_boost_c_and_the_fallback_choice_are_recorded(setup):
    trained = train(setup, "--method", "boost-c", "--nu", "0.3")
    assert trained.returncode == 0, trained.stderr
    weights = json.loads((setup["out"] / "fusion.json").read_text())["weights"]
    assert weights["method"] == "boost-c" and np.array(weights["theta"]).shape == (2, 3) and weights["nu"] == 0.3


def test_bad_fusion_input_gets_a_clear_error_and_no_traceback(setup, tmp_path):
    one = edgevid("train", "fusion", "--member", setup["colour"], "--data", setup["held"], "--out", setup["out"])
    assert one.returncode == ConfigError.exit_code and "two or more" in one.stderr
    missing = edgevid("train", "fusion", "--member", setup["colour"], "--member", tmp_path / "nope",
                      "--data", setup["held"], "--out", setup["out"])
    assert missing.returncode == ManifestError.exit_code and "Traceback" not in missing.stderr
    shutil.copytree(str(setup["held"] / "wave"), str(setup["held"] / "swim"))
    unknown = train(setup)
    assert unknown.returncode == DataError.exit_code and "swim" in unknown.stderr
    assert not setup["out"].exists()  # nothing half-written
    shutil.rmtree(str(setup["held"] / "swim"))

    assert train(setup).returncode == 0
    shutil.rmtree(str(setup["clip"]))
    gone = edgevid("run", setup["out"], "--source", "synthetic:segments=1,frames=4")
    assert gone.returncode == ManifestError.exit_code and "member 'clip'" in gone.stderr and "missing" in gone.stderr
    assert "Traceback" not in gone.stderr
    option = edgevid("run", setup["out"], "--source", "synthetic", "--fine-cap", "2")
    assert option.returncode == ManifestError.exit_code  # the member is still missing: said first


def test_an_option_no_member_takes_is_refused(setup):
    assert train(setup).returncode == 0
    option = edgevid("run", setup["out"], "--source", "synthetic:segments=1,frames=4", "--fine-cap", "2")
    assert option.returncode == ConfigError.exit_code and "applies to no member" in option.stderr


def test_a_solver_that_finds_no_weighting_is_reported_with_the_chosen_fallback(setup, monkeypatch, capsys):
    import scipy.optimize

    from edgevid.cli import main

    class Failed:
        success, message, x = False, "the problem is infeasible (forced)", None

    monkeypatch.setattr(scipy.optimize, "linprog", lambda *a, **k: Failed())
    args = ["train", "fusion", "--member", "colour=%s" % setup["colour"], "--member", str(setup["clip"]),
            "--data", str(setup["held"]), "--out", str(setup["out"])]
    assert main(args + ["--fallback", "error"]) == DataError.exit_code
    assert "found no weighting" in capsys.readouterr().err and not setup["out"].exists()
    assert main(args) == 0
    assert "the LP found no weighting: equal weights (the problem is infeasible (forced))" in capsys.readouterr().err
    saved = json.loads((setup["out"] / "fusion.json").read_text())
    assert saved["weights"]["theta"] == [0.5, 0.5] and saved["weights"]["fallback"] == "equal weights"
    assert saved["held_out"]["compare"]["boost-c"]["fallback"] == "equal weights"  # the comparison says so too
