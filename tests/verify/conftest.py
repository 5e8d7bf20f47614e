"""Fixtures of the verify tests: the session's small LiteEval (tests/conftest.py) under short names.
Without the export extra (torch, torchvision, onnx, onnxsim, onnxruntime) these tests are skipped."""
from __future__ import annotations

import pytest

from tests.helpers.deps import EXPORT, skip_modules_without

pytest_pycollect_makemodule = skip_modules_without(*EXPORT)


@pytest.fixture(scope="session")
def model(liteeval_model):
    return liteeval_model


@pytest.fixture(scope="session")
def bundle(liteeval_bundle):
    return liteeval_bundle


@pytest.fixture(scope="session")
def features(liteeval_features):
    return liteeval_features
