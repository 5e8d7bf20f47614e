"""Optional packages a test folder needs. A device has numpy, onnxruntime and OpenCV only: the test modules of
a folder whose conftest says ``pytest_pycollect_makemodule = skip_modules_without("torch")`` are reported as
skipped there, with the reason, instead of failing to import."""
from __future__ import annotations

import importlib.util
from typing import List

import pytest

EXPORT = ("torch", "torchvision", "onnx", "onnxsim", "onnxruntime")


def missing(*modules: str) -> List[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


class _SkippedModule(pytest.Module):
    reason = ""

    def collect(self):
        # raised from code compiled under the module's own name, so the report points at the module
        # (tests/models/test_liteeval.py:1: needs torch), as importorskip at its top would
        code = compile("raise Skipped(reason)", str(self.path), "exec")
        exec(code, {"Skipped": pytest.skip.Exception, "reason": self.reason})


def skip_modules_without(*modules: str):
    """A ``pytest_pycollect_makemodule`` hook for a conftest: when any of ``modules`` is missing, every test
    module below that conftest is skipped at collection, with a reason naming what is missing."""
    gone = missing(*modules)

    def pytest_pycollect_makemodule(module_path, parent):
        if gone and module_path.name.startswith("test_"):
            module = _SkippedModule.from_parent(parent, path=module_path)
            module.reason = "needs %s (not installed here)" % ", ".join(gone)
            return module
        return None

    return pytest_pycollect_makemodule
