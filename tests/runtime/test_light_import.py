"""The device-side runtime modules import without torch, onnx, onnxruntime, cv2 or tensorrt."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import sys

class Block:
    HEAVY = {"torch", "onnx", "onnxruntime", "cv2", "tensorrt", "pycuda", "torchvision", "onnxsim"}
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.HEAVY:
            raise ImportError("blocked for this test: " + name)
        return None

sys.meta_path.insert(0, Block())
import edgevid.runtime as rt
from edgevid.runtime import source, policies, pipeline, stream, stats, annotate, cli_run, gated, stages, prediction, recurrent, clip  # noqa
from edgevid import preprocess, families, backends  # noqa
from edgevid.runtime.device import plan, executor, liteeval, prernn  # noqa
from edgevid.backends import trt, cuda, registry  # noqa
assert rt.StreamRuntime is stream.StreamRuntime and rt.run_stream is cli_run.run_stream
from edgevid.errors import DependencyError
try:
    source.open_source("clip_that_is_missing.mp4")
except Exception as e:
    assert type(e).__name__ == "SourceError", e
try:
    preprocess.Preprocessor(__import__("edgevid.spec").spec.PreprocessSpec())
except DependencyError as e:
    assert "cv2" in str(e)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in Block.HEAVY)
assert not heavy, heavy
print("light")
"""


def test_runtime_imports_without_heavy_packages():
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=str(ROOT), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "light"
