""".gitignore knows what edgevid and its tools write in a checkout, and never hides a tracked file
(tests/fixtures/** are ONNX bundles kept on purpose)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(),
                                reason="needs git and a checkout")

WRITTEN = ["edgevid-demo/report.json", "edgevid-demo/bundle/fine_cnn.onnx", "demo-out/annotated.avi",
           "bundle/bundle.json", "bundle-int8/fine.onnx", "model.pt", "cnn.pth", "fine_cnn.onnx", "ann.mp4",
           "stats.json", "saturation/saturation.png", "fine.int8.trt8.5.sm72.engine",
           "bundle/calib/fine.calibration.cache", "calibration.cache", "benchmarks/results/_scratch/x.json",
           ".venv/bin/python", "venv/bin/python",
           ".edgevid-demo.w5gl4h30.tmp/data/stream.avi", "bundle/.fine.onnx.k2j3.tmp.onnx", ".report.json.x1.tmp.json",
           ".edgevid-demo.old/report.json", "edgevid/__pycache__/cli.cpython-38.pyc", ".ruff_cache/x"]
KEPT = ["tests/fixtures/schema1/liteeval/coarse_cnn.onnx", "tests/fixtures/schema2/new/clip.onnx",
        "tests/fixtures/schema1/liteeval/bundle.json", "benchmarks/results/cpu-2core/liteeval.json",
        "docs/models.md", "edgevid/bundle.py", ".ci/run", ".gitignore", "setup.py"]


def ignored(paths):
    result = subprocess.run(["git", "check-ignore", "--no-index", "--stdin"], input="\n".join(paths), cwd=str(ROOT),
                            capture_output=True, text=True, timeout=60)
    return set(result.stdout.split())


def test_outputs_are_ignored():
    assert ignored(WRITTEN) == set(WRITTEN), sorted(set(WRITTEN) - ignored(WRITTEN))


def test_fixtures_and_sources_are_not_ignored():
    assert ignored(KEPT) == set()


def test_no_tracked_file_is_ignored():
    result = subprocess.run(["git", "ls-files", "--cached", "--ignored", "--exclude-standard"], cwd=str(ROOT),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout
