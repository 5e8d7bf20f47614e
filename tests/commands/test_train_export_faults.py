"""`edgevid train` and `edgevid export` under real faults: SIGTERM mid-training stops with exit 130 and the last
epoch's checkpoint resumes; an export past a real file-size limit is exit 13, leaving no half bundle and an older
bundle of that name untouched."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgevid.errors import OutputError
from tests.commands.test_output_errors import limited, tree
from tests.commands.test_signals import _stop_after

torch = pytest.importorskip("torch")
pytest.importorskip("cv2")
ROOT = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PYTHONPATH=str(ROOT))
TRAIN = ["--arch", "small_vgg", "--layer", "fc6", "--cell", "gru", "--form", "sih", "--image-size", "32",
         "--batch-size", "4", "--lr", "1e-3", "--val-split", "0.25", "--frames", "4"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from edgevid.data.synthetic import CLASSES, generate_dataset

    root = tmp_path_factory.mktemp("faults") / "data"
    generate_dataset(root, videos_per_class=4, num_frames=4, size=32, classes=CLASSES[:2], seed=3)
    return root


def edgevid(*args, **popen):
    return subprocess.run([sys.executable, "-m", "edgevid", *args], capture_output=True, text=True, cwd=str(ROOT),
                          env=ENV, timeout=600, **popen)


def test_sigterm_stops_training_and_the_last_checkpoint_resumes(data, tmp_path):
    ckpt = tmp_path / "m.pt"
    code, err, stopped_s = _stop_after([sys.executable, "-m", "edgevid", "train", "prernn", "--data", str(data),
                                        "--out", str(ckpt), "--epochs", "500", *TRAIN], "epoch 2/500")
    assert code == 130 and "interrupted" in err and "Traceback" not in err, err
    assert stopped_s < 10
    saved = torch.load(str(ckpt), weights_only=True)  # whole: the epochs done, nothing half-written
    done = saved["epoch"]
    assert done >= 2 and len(saved["history"]) == done
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.best.pt", "m.pt"]  # no temporary file
    resumed = edgevid("train", "prernn", "--data", str(data), "--out", str(ckpt), "--epochs", str(done + 1),
                      "--resume", str(ckpt), *TRAIN)
    assert resumed.returncode == 0, resumed.stderr
    assert torch.load(str(ckpt), weights_only=True)["epoch"] == done + 1  # one more epoch after those done


def test_an_export_past_the_size_limit_leaves_no_half_bundle_and_the_old_one_untouched(data, tmp_path):
    ckpt = tmp_path / "m.pt"
    assert edgevid("train", "prernn", "--data", str(data), "--out", str(ckpt), "--epochs", "1", *TRAIN).returncode == 0
    fresh = tmp_path / "fresh"
    done = edgevid("export", "prernn", "--checkpoint", str(ckpt), "--out", str(fresh), preexec_fn=limited(16 * 1024))
    assert done.returncode == OutputError.exit_code, done.stderr
    assert "cannot write" in done.stderr and "Traceback" not in done.stderr
    old = tmp_path / "old"
    assert edgevid("export", "prernn", "--checkpoint", str(ckpt), "--out", str(old)).returncode == 0
    before = tree(old)
    again = edgevid("export", "prernn", "--checkpoint", str(ckpt), "--out", str(old), "--overwrite",
                    preexec_fn=limited(16 * 1024))
    assert again.returncode == OutputError.exit_code, again.stderr
    assert tree(old) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.best.pt", "m.pt", "old"]  # no fresh/, no temporary


def test_a_stopped_export_leaves_no_half_bundle(data, tmp_path):
    ckpt = tmp_path / "m.pt"
    assert edgevid("train", "prernn", "--data", str(data), "--out", str(ckpt), "--epochs", "1", *TRAIN).returncode == 0
    out = tmp_path / "bundle"
    code, err, stopped_s = _stop_after([sys.executable, "-m", "edgevid", "export", "prernn", "--checkpoint",
                                        str(ckpt), "--out", str(out)], "exporting step")
    assert code == 130 and "interrupted" in err and "Traceback" not in err, err
    assert stopped_s < 10 and sorted(p.name for p in tmp_path.iterdir()) == ["m.best.pt", "m.pt"]
