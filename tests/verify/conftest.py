"""Fixtures of the verify tests: the session's small LiteEval (tests/conftest.py) under short names.
Without the export extra (torch, torchvision, onnx, onnxsim, onnxruntime) these tests are skipped."""
from __future__ import annotations

from tests.helpers.deps import EXPORT, skip_modules_without
from tests.helpers.liteeval_fixtures import bundle, features, model  # noqa: F401  (fixtures)

pytest_pycollect_makemodule = skip_modules_without(*EXPORT)
