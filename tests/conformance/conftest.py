"""The real TensorRT and pycuda APIs, read over stub libraries (tests/conformance/README.md).

``tests/conformance/setup_apis.sh`` prepares them and writes ``$EDGEVID_API_CACHE/apis.json``. Without it
these tests skip, saying so; CI runs the setup first and sets ``EDGEVID_REQUIRE_APIS=1`` so that a missing
API fails instead of skipping."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Dict

import pytest

HERE = Path(__file__).resolve().parent
PACKAGE = HERE.parents[1] / "edgevid"


def cache_root() -> Path:
    return Path(os.environ.get("EDGEVID_API_CACHE") or Path.home() / ".cache" / "edgevid-apis")


def manifest() -> dict:
    path = cache_root() / "apis.json"
    if not path.is_file():
        why = ("the real TensorRT/pycuda APIs are not prepared (%s is missing); "
               "run tests/conformance/setup_apis.sh (needs PyPI the first time)" % path)
        if os.environ.get("EDGEVID_REQUIRE_APIS") == "1":
            pytest.fail(why + "; EDGEVID_REQUIRE_APIS=1 says they must be here")
        pytest.skip(why)
    return json.loads(path.read_text())


def introspect(python: str, stubs: str, modules, pythonpath: str = "") -> Dict[str, dict]:
    """Dump modules in a subprocess over the stubs (one interpreter per API version)."""
    env = dict(os.environ, LD_LIBRARY_PATH=stubs, PYTHONPATH=pythonpath)
    done = subprocess.run([python, str(HERE / "introspect.py")] + list(modules), env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, "introspect.py failed over %s:\n%s" % (stubs, done.stderr[-3000:])
    return json.loads(done.stdout)


def project_sources():
    """(path relative to the repository, text) of every module of the package."""
    root = PACKAGE.parent
    return [(str(p.relative_to(root)), p.read_text()) for p in sorted(PACKAGE.rglob("*.py"))]


def project_uses(apis, family: str):
    """Every use of ``family`` (tensorrt, pycuda) in the package, read with the whole project's context."""
    from tests.conformance.apicheck import find_uses, project

    sources = project_sources()
    context = project(sources)
    return [u for path, text in sources for u in find_uses(text, path, apis, context)
            if u.module.split(".")[0] == family]


@pytest.fixture(scope="session")
def trt_apis() -> Dict[str, Dict[str, dict]]:
    """TensorRT version -> {"tensorrt": dump}, for 8.6.1, 10.3.x and the newest 11.x."""
    apis = {}
    for entry in manifest()["tensorrt"]:
        dump = introspect(entry["python"], entry["stubs"], ["tensorrt=tensorrt_bindings"], entry["path"])
        assert dump["tensorrt"]["error"] is None, "TensorRT %s: %s" % (entry["version"], dump["tensorrt"]["error"])
        apis[entry["version"]] = dump
    return apis


@pytest.fixture(scope="session")
def pycuda_modules():
    """pycuda modules the package imports, and the driver module every use of CUDA goes through."""
    from tests.conformance.apicheck import aliases
    import ast

    found = {"pycuda.driver"}
    for _, text in project_sources():
        found |= {m for m, _ in aliases(ast.parse(text)).values() if m.startswith("pycuda.")}
    return sorted(found - {"pycuda.autoinit"})  # autoinit creates a context when imported; banned anyway


@pytest.fixture(scope="session")
def pycuda_apis(pycuda_modules) -> Dict[str, Dict[str, dict]]:
    """pycuda version -> {module: dump} of the pycuda built here."""
    entry = manifest()["pycuda"]
    dump = introspect(entry["python"], entry["stubs"], pycuda_modules)
    assert dump["pycuda.driver"]["error"] is None, dump["pycuda.driver"]["error"]
    return {dump["pycuda.driver"]["version"]: dump}


@pytest.fixture(scope="session")
def project_apis(trt_apis, pycuda_apis) -> Dict[str, Dict[str, dict]]:
    """TensorRT version -> its dump and pycuda's: the package is read with both, so that an object of one
    is never taken for an object of the other (``buffer.free()``)."""
    pycuda = next(iter(pycuda_apis.values()))
    return {version: dict(api, **pycuda) for version, api in trt_apis.items()}
