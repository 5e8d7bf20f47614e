"""Atomic writes: the temporary file or folder is private while written, and the result gets the mode the
user's umask gives a plain open/mkdir (not mkstemp's 0600 or mkdtemp's 0700)."""
from __future__ import annotations

import os
import stat

import pytest

from edgevid.fsutil import atomic_dir, atomic_path, current_umask, write_json

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")


@pytest.fixture(params=[0o022, 0o027, 0o077])
def umask(request):
    before = os.umask(request.param)
    yield request.param
    os.umask(before)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(str(path)).st_mode)


def test_current_umask_reads_without_changing_it(umask):
    assert current_umask() == umask
    assert current_umask() == umask  # unchanged by reading it


def test_current_umask_without_proc(umask, monkeypatch, tmp_path):
    import builtins

    real_open = builtins.open

    def no_proc(path, *args, **kwargs):
        if str(path).startswith("/proc/"):
            raise OSError("no /proc here")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", no_proc)
    assert current_umask(tmp_path) == umask
    assert list(tmp_path.iterdir()) == []  # the probe file is gone


def test_atomic_file_gets_the_umask_mode(tmp_path, umask):
    target = tmp_path / "report.json"
    write_json(target, {"a": 1})
    assert mode(target) == 0o666 & ~umask
    with atomic_path(tmp_path / "model.pt") as tmp:
        tmp.write_bytes(b"weights")
    assert mode(tmp_path / "model.pt") == 0o666 & ~umask


def test_atomic_dir_gets_the_umask_mode_and_so_do_its_files(tmp_path, umask):
    target = tmp_path / "bundle"
    with atomic_dir(target) as tmp:
        write_json(tmp / "bundle.json", {})
        (tmp / "graph.onnx").write_bytes(b"onnx")
        (tmp / "sub").mkdir()
    assert mode(target) == 0o777 & ~umask
    assert mode(target / "sub") == 0o777 & ~umask
    for name in ("bundle.json", "graph.onnx"):
        assert mode(target / name) == 0o666 & ~umask, name
    with atomic_dir(target, overwrite=True) as tmp:
        write_json(tmp / "bundle.json", {"v": 2})
    assert mode(target) == 0o777 & ~umask and mode(target / "bundle.json") == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_a_failed_write_leaves_nothing(tmp_path, umask):
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "x.json") as tmp:
            tmp.write_text("half")
            raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == []
