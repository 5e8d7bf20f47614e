"""The CLI verbs end to end on a tiny class-folder data set: train → export → info → verify → run,
and the user mistakes along the way: one line on stderr, a specific non-zero exit code, no traceback."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from edgevid.errors import CheckpointError, DataError, ManifestError, SourceError

pytest.importorskip("torch")
pytest.importorskip("cv2")

CLASSES = ["grow", "shrink", "stripes_v"]


def edgevid(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "edgevid"] + [str(a) for a in args], capture_output=True, text=True,
                          timeout=600, cwd=cwd)


def assert_user_error(result, exit_code, *words):
    assert result.returncode == exit_code, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    for w in words:
        assert w in result.stderr, result.stderr


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from edgevid.data.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("flow")
    generate_dataset(root / "data", 3, num_frames=6, seed=1, classes=CLASSES)
    ckpt = root / "model.pt"
    result = edgevid("train", "liteeval", "--data", root / "data", "--out", ckpt, "--frames", 6, "--fine-arch",
                     "resnet18", "--coarse-hidden", 8, "--fine-hidden", 16, "--epochs", 2, "--batch-size", 2,
                     "--val-split", 0.34)
    assert result.returncode == 0, result.stderr
    assert ckpt.is_file() and "checkpoint:" in result.stdout
    return root, ckpt


@pytest.fixture(scope="module")
def bundle(trained):
    root, ckpt = trained
    out = root / "bundle"
    result = edgevid("export", "liteeval", "--checkpoint", ckpt, "--out", out, "--fine-cap", 2, "--fine-window", 4)
    assert result.returncode == 0, result.stderr
    return out


def test_info_lists_the_four_roles(bundle):
    info = json.loads(edgevid("info", bundle, "--json").stdout)
    assert set(info["graphs"]) == {"coarse_cnn", "fine_cnn", "coarse_step", "fine_step"}
    assert info["classes"] == len(CLASSES) and info["policy"]["fine_cap"] == 2


def test_verify_reports_parity(trained, bundle):
    result = edgevid("verify", bundle, "--checkpoint", trained[1], "--source", "synthetic", "--frames", 24, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] and report["stream"]["gate_agreement"] == 1.0


def test_run_prints_json_lines_and_writes_video_and_stats(trained, bundle):
    root = trained[0]
    video = root / "data" / "grow" / "grow_0.avi"
    result = edgevid("run", bundle, "--source", video, "--json", "--out-video", root / "ann.avi",
                     "--stats", root / "stats.json")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [p["frame_index"] for p in lines] == list(range(6))
    assert all(p["label"] in CLASSES and p["path"] in ("fine", "coarse") for p in lines)
    stats = json.loads((root / "stats.json").read_text())
    # the exported cap (2 fine calls per 4 steps) holds in every window; that it engages when the gate asks for
    # more is shown on a bundle whose gate always asks (tests/commands/test_cli_run.py)
    paths = [p["path"] for p in lines]
    assert stats["frames"] == 6 and stats["fine_steps"] == paths.count("fine")
    assert all(paths[i:i + 4].count("fine") <= 2 for i in range(len(paths) - 3))
    assert stats["fine_steps"] + stats["fine_capped"] <= 6
    from edgevid.data.video import probe_video

    assert probe_video(root / "ann.avi")["frames"] == 6


def test_train_refuses_missing_and_corrupt_data(tmp_path):
    assert_user_error(edgevid("train", "liteeval", "--data", tmp_path / "none", "--out", tmp_path / "m.pt"),
                      DataError.exit_code, "does not exist")
    for c in CLASSES[:2]:
        (tmp_path / "d" / c).mkdir(parents=True)
        (tmp_path / "d" / c / "a.avi").write_bytes(b"")
        (tmp_path / "d" / c / "b.avi").write_bytes(b"not a video at all")
    result = edgevid("train", "liteeval", "--data", tmp_path / "d", "--out", tmp_path / "m.pt", "--frames", 4,
                     "--fine-arch", "resnet18", "--epochs", 1, "--batch-size", 2, "--val-split", 0.5)
    assert result.returncode == DataError.exit_code and "Traceback" not in result.stderr, result.stderr
    assert not (tmp_path / "m.pt").exists()


def test_export_refuses_a_file_that_is_no_checkpoint(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    assert_user_error(edgevid("export", "liteeval", "--checkpoint", bad, "--out", tmp_path / "b"),
                      CheckpointError.exit_code, "cannot read checkpoint")
    assert not (tmp_path / "b").exists()


def test_run_refuses_a_damaged_bundle_and_bad_sources(bundle, tmp_path):
    import shutil

    copy = tmp_path / "b"
    shutil.copytree(str(bundle), str(copy))
    assert_user_error(edgevid("run", copy, "--source", "nothing.mp4"), SourceError.exit_code, "does not exist")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    assert_user_error(edgevid("run", copy, "--source", empty), SourceError.exit_code)
    assert_user_error(edgevid("run", copy, "--source", "/dev/video57"), SourceError.exit_code, "not found")
    (copy / "fine_cnn.onnx").unlink()
    assert_user_error(edgevid("run", copy, "--source", "synthetic"), ManifestError.exit_code, "missing")


def test_a_model_trained_on_optical_flow_exports_and_streams_on_flow(tmp_path):
    """train --flow records the flow settings in the checkpoint, export puts them in the bundle, run makes them."""
    from edgevid.data.synthetic import generate_dataset

    generate_dataset(tmp_path / "data", 2, num_frames=6, seed=2, classes=CLASSES)
    ckpt, out = tmp_path / "flow.pt", tmp_path / "flow-bundle"
    trained = edgevid("train", "prernn", "--data", tmp_path / "data", "--out", ckpt, "--frames", 6, "--arch",
                      "small_vgg", "--image-size", 32, "--epochs", 1, "--batch-size", 2, "--val-split", 0.5,
                      "--flow", "farneback", "--flow-bound", 8, "--flow-size", 48)
    assert trained.returncode == 0, trained.stderr
    assert edgevid("export", "prernn", "--checkpoint", ckpt, "--out", out).returncode == 0
    flow = json.loads((out / "bundle.json").read_text())["preprocess"]["flow"]
    assert flow == {"method": "farneback", "bound": 8.0, "size": 48}
    stats = tmp_path / "stats.json"
    run = edgevid("run", out, "--source", "synthetic:segments=1,frames=6", "--stats", stats)
    assert run.returncode == 0, run.stderr
    assert json.loads(stats.read_text())["stages_ms"]["flow"]["count"] == 6
    bad = edgevid("train", "prernn", "--data", tmp_path / "data", "--out", ckpt, "--flow", "dis", "--flow-size", 2)
    assert_user_error(bad, 2, "flow size")
