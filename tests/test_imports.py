"""The device side imports and the CLI answers --help with every heavy package absent (docs/architecture.md §4),
and device-side modules use no syntax or stdlib call newer than Python 3.8 (JetPack 5)."""
from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ["torch", "torchvision", "onnx", "onnxsim", "onnxruntime", "tensorrt", "pycuda", "cv2", "matplotlib"]
DEVICE_MODULES = ["edgevid", "edgevid.cli", "edgevid.bundle", "edgevid.spec", "edgevid.backends",
                  "edgevid.backends.ort", "edgevid.backends.trt", "edgevid.backends.cuda", "edgevid.preprocess",
                  "edgevid.runtime.source", "edgevid.runtime.stream", "edgevid.runtime.device.liteeval",
                  "edgevid.runtime.device.prernn", "edgevid.runtime.cli_run",
                  "edgevid.runtime.annotate", "edgevid.verify", "edgevid.data", "edgevid.commands.info",
                  "edgevid.commands.run", "edgevid.commands.build", "edgevid.engine_build.builder",
                  "edgevid.engine_build.trt_ops", "edgevid.engine_build.trtexec", "edgevid.bench.context",
                  "edgevid.bench.graphs", "edgevid.bench.report", "edgevid.bench.run", "edgevid.bench.plots",
                  "edgevid.commands.bench", "edgevid.fusion.bundle", "edgevid.fusion.runtime", "edgevid.runtime.flow",
                  "edgevid.data.flow", "edgevid.commands.fusion"]
DEVICE_FILES = ["edgevid/__init__.py", "edgevid/__main__.py", "edgevid/errors.py", "edgevid/log.py",
                "edgevid/_optional.py", "edgevid/spec.py", "edgevid/bundle.py", "edgevid/fsutil.py",
                "edgevid/cli.py", "edgevid/commands", "edgevid/backends", "edgevid/runtime", "edgevid/verify",
                "edgevid/data", "edgevid/models/modes.py", "edgevid/engine_build", "edgevid/telemetry.py",
                "edgevid/bench", "edgevid/metrics.py", "edgevid/fusion/__init__.py", "edgevid/fusion/bundle.py",
                "edgevid/fusion/runtime.py", "edgevid/fusion/weights.py", "edgevid/fusion/learn.py"]

BLOCKER = textwrap.dedent("""
    import sys
    BLOCKED = set(%r)
    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError("blocked for the test: " + name)
            return None
    sys.meta_path.insert(0, Blocker())
""") % (HEAVY,)


def run_blocked(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKER + textwrap.dedent(code)], cwd=str(ROOT),
                          capture_output=True, text=True, timeout=120)


def test_device_modules_import_without_heavy_packages():
    result = run_blocked("""
        import importlib
        for name in %r:
            importlib.import_module(name)
        import edgevid
        assert not any(m.split(".")[0] in BLOCKED for m in sys.modules), sorted(sys.modules)
        print("ok")
    """ % (DEVICE_MODULES,))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")


def test_cli_help_without_heavy_packages():
    result = run_blocked("""
        from edgevid.cli import main
        try:
            main(["--help"])
        except SystemExit as e:
            assert e.code == 0
        for verb in ("demo", "train", "export", "run", "info", "verify", "analyze-saturation", "build", "bench"):
            try:
                main([verb, "--help"])
            except SystemExit as e:
                assert e.code == 0, verb
    """)
    assert result.returncode == 0, result.stderr
    assert "usage: edgevid" in result.stdout and "demo" in result.stdout


def test_missing_package_is_a_dependency_error_naming_the_extra():
    result = run_blocked("""
        from edgevid._optional import require
        from edgevid.errors import DependencyError
        try:
            require("onnxruntime", "the ONNX Runtime backend")
        except DependencyError as e:
            assert isinstance(e, ImportError)
            assert "edgevid[cpu]" in str(e), str(e)
            print("ok")
    """)
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout


@pytest.mark.skipif(shutil.which("vermin") is None, reason="vermin (dev extra) not installed")
def test_device_side_needs_at_most_python_3_8():
    files = [str(ROOT / f) for f in DEVICE_FILES]
    result = subprocess.run(["vermin", "-t=3.8-", "--no-tips", "--violations", "--eval-annotations",
                             "--backport", "dataclasses", "--backport", "typing"] + files,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
