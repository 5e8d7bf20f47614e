"""Writing files so that nothing half-written is ever left behind (temp path + rename).

The temporary file or folder is private while it is written (``mkstemp`` 0600, ``mkdtemp`` 0700); just
before the rename it gets the mode a plain ``open``/``mkdir`` would have given it under the user's umask
(0644 / 0755 under umask 022), so a bundle copied to a device or run by a service account stays readable.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any, Iterator, Optional, Union

PathLike = Union[str, "os.PathLike[str]"]


def current_umask(probe_dir: Optional[PathLike] = None) -> int:
    """The process's umask, read without changing it (``os.umask`` would, for every thread at once).

    Linux reports it in /proc/self/status; elsewhere a probe folder made in ``probe_dir`` (default: the
    temp folder) with mode 0o777 shows which bits the umask clears.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    probe = tempfile.mkdtemp(prefix=".umask.", dir=None if probe_dir is None else str(probe_dir))
    try:
        os.rmdir(probe)
        os.mkdir(probe, 0o777)
        return 0o777 & ~stat.S_IMODE(os.stat(probe).st_mode)
    finally:
        if os.path.isdir(probe):
            os.rmdir(probe)


def probe(path: Path, kind: str = "any") -> bool:
    """Whether ``path`` exists (``kind`` "any"), is a file ("file") or a folder ("dir"); False, not an exception,
    for a name the OS cannot look up (too long, a NUL byte, no permission on a parent)."""
    try:
        return {"any": path.exists, "file": path.is_file, "dir": path.is_dir}[kind]()
    except (OSError, ValueError):
        return False


def public_mode(path: PathLike, directory: bool = False) -> None:
    """Give ``path`` the mode a plain ``open`` (0o666) or ``mkdir`` (0o777) would have under the umask."""
    base = 0o777 if directory else 0o666
    os.chmod(str(path), base & ~current_umask(Path(path).parent))


@contextlib.contextmanager
def atomic_path(target: PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + target.name + ".", suffix=".tmp" + target.suffix, dir=str(target.parent))
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            public_mode(tmp_path, directory=tmp_path.is_dir())
        os.replace(str(tmp_path), str(target))
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(target: PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``target``; it becomes ``target`` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="." + target.name + ".", suffix=".tmp", dir=str(target.parent)))
    try:
        yield tmp
        public_mode(tmp, directory=True)
        if target.exists():
            if not overwrite:
                raise FileExistsError(str(target))
            old = target.with_name("." + target.name + ".old")
            shutil.rmtree(str(old), ignore_errors=True)
            os.replace(str(target), str(old))
            os.replace(str(tmp), str(target))
            shutil.rmtree(str(old), ignore_errors=True)
        else:
            os.replace(str(tmp), str(target))
    finally:
        if tmp.exists():
            shutil.rmtree(str(tmp), ignore_errors=True)


def write_json(path: PathLike, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


def sha256_file(path: PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(str(path), "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()
