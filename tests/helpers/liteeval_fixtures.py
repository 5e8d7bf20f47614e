"""Short names for the session's small LiteEval (tests/conftest.py), for the export and verify tests; a conftest
imports them: ``from tests.helpers.liteeval_fixtures import bundle, features, model``."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def model(liteeval_model):
    return liteeval_model


@pytest.fixture(scope="session")
def bundle(liteeval_bundle):
    return liteeval_bundle


@pytest.fixture(scope="session")
def features(liteeval_features):
    return liteeval_features
