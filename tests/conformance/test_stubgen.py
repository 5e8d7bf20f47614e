"""stubgen.py on a small extension whose native library is gone: the stub it writes exports exactly what the
extension needs, so the extension loads again (no network and no TensorRT needed)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

STUBGEN = Path(__file__).parent / "stubgen.py"


def cc(*args):
    subprocess.run([shutil.which("cc") or "gcc"] + list(args), check=True, capture_output=True)


@pytest.mark.skipif(not (shutil.which("cc") or shutil.which("gcc")), reason="no C compiler")
def test_a_stub_makes_an_extension_with_a_missing_library_load(tmp_path):
    (tmp_path / "vendor.c").write_text("int vendor_create(int v) { return v; }\nint vendor_version(void) { return 8; }\n")
    (tmp_path / "ext.c").write_text("int vendor_create(int); int vendor_version(void);\n"
                                    "int ext_entry(void) { return vendor_create(1) + vendor_version(); }\n")
    cc("-shared", "-fPIC", "-Wl,-soname,libvendor.so.8", "-o", str(tmp_path / "libvendor.so.8"), str(tmp_path / "vendor.c"))
    (tmp_path / "libvendor.so").symlink_to("libvendor.so.8")
    cc("-shared", "-fPIC", "-Wl,--no-as-needed", "-o", str(tmp_path / "ext.so"), str(tmp_path / "ext.c"),
       "-L" + str(tmp_path), "-lvendor")
    for f in ("libvendor.so.8", "libvendor.so"):
        (tmp_path / f).unlink()  # the vendor's library is not on this machine

    load = [sys.executable, "-c", "import ctypes, sys; ctypes.CDLL(sys.argv[1])", str(tmp_path / "ext.so")]
    assert subprocess.run(load, capture_output=True).returncode != 0

    stubs = tmp_path / "stubs"
    done = subprocess.run([sys.executable, str(STUBGEN), "--out", str(stubs), "--returns", "34",
                           str(tmp_path / "ext.so")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    source = (stubs / "libvendor_stub.c").read_text()
    assert "long vendor_create(void) { return 34; }" in source and "vendor_version" in source
    assert "ext_entry" not in source and "printf" not in source  # only what no present library provides
    env = {"LD_LIBRARY_PATH": str(stubs), "PATH": "/usr/bin:/bin"}
    assert subprocess.run(load, capture_output=True, env=env).returncode == 0
