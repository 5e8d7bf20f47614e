"""_optional.available finds modules without importing them (asking about TensorRT must not load it)."""
from __future__ import annotations

import sys

import pytest

from edgevid._optional import available


@pytest.fixture
def modules(tmp_path, monkeypatch):
    """A tmp folder on sys.path whose modules record on import and then raise."""
    monkeypatch.syspath_prepend(str(tmp_path))
    flag = "_edgevid_test_imported"
    monkeypatch.setattr(sys, flag, [], raising=False)
    body = "import sys\nsys.%s.append(__name__)\nraise RuntimeError('must not be imported to ask')\n" % flag
    (tmp_path / "ev_boom.py").write_text(body)
    (tmp_path / "ev_boom_pkg").mkdir()
    (tmp_path / "ev_boom_pkg" / "__init__.py").write_text(body)
    yield getattr(sys, flag)
    for name in ("ev_boom", "ev_boom_pkg"):
        sys.modules.pop(name, None)


def test_a_module_that_raises_at_import_is_available_and_not_imported(modules):
    assert available("ev_boom")
    assert available("ev_boom_pkg")
    assert modules == [] and "ev_boom" not in sys.modules and "ev_boom_pkg" not in sys.modules


def test_missing_modules_are_not_available(modules):
    assert not available("ev_no_such_module")
    assert not available("ev_no_such_module.sub")  # nothing imported to ask about a child of nothing
    assert not available("ev_boom_pkg.sub")  # the parent must run to find a child: it raises, so not available
    assert modules == ["ev_boom_pkg"]


def test_submodules_and_blocked_imports(monkeypatch):
    assert available("json.decoder") and not available("json.no_such_part")
    monkeypatch.setitem(sys.modules, "ev_blocked", None)  # how Python marks an import as refused
    assert not available("ev_blocked")
