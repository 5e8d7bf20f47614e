"""CI prepares the APIs before the tests and fails if it cannot (so the conformance tests run there, never
skip), and the conftest turns a missing API into a failure where EDGEVID_REQUIRE_APIS=1."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_ci_runs_the_setup_before_pytest_and_fails_when_it_fails():
    ci = (ROOT / ".ci" / "run").read_text()
    setup, require, pytest_run = (ci.index(s) for s in ("tests/conformance/setup_apis.sh",
                                                        "export EDGEVID_REQUIRE_APIS=1", "python3 -m pytest -q"))
    assert setup < require < pytest_run
    assert "if ! bash tests/conformance/setup_apis.sh; then" in ci and "exit 1" in ci[setup:require]


def test_without_the_apis_the_tests_skip_here_and_fail_where_they_are_required(tmp_path):
    def run(**env):
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               str(ROOT / "tests" / "conformance" / "test_tensorrt_api.py"), "-k", "three_supported"],
                              capture_output=True, text=True, cwd=ROOT, timeout=300,
                              env=dict(os.environ, EDGEVID_API_CACHE=str(tmp_path), **env))
    skipped = run(EDGEVID_REQUIRE_APIS="0")
    assert skipped.returncode == 0 and "1 skipped" in skipped.stdout, skipped.stdout
    required = run(EDGEVID_REQUIRE_APIS="1")
    assert required.returncode == 1 and "EDGEVID_REQUIRE_APIS=1" in required.stdout, required.stdout
