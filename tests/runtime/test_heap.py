"""edgevid.runtime.heap: memory freed while graphs load goes back to the OS (glibc), and the runtime opens the
largest graph first."""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edgevid.runtime import heap
from edgevid.runtime.stream import StreamRuntime
from tests.helpers.numpy_session import CountingLiteEval, NumpySession, numpy_sessions

glibc = pytest.mark.skipif(heap._glibc() is None, reason="not glibc: loading_graphs does nothing here")

# A fragmented heap: a raised mmap threshold (a freed 20 MB block), then 1 MB buffers with a small live block
# after each, the way a graph's parse buffers sit between its weights; the 1 MB buffers are then freed.
FRAGMENT = textwrap.dedent("""
    import sys
    from edgevid.runtime import heap
    def rss_mb():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024.0
    del bytearray(20 << 20)[:]
    before = rss_mb()
    with heap.loading_graphs():
        big, live = [], []
        for _ in range(100):
            big.append(bytearray(1 << 20))
            live.append(bytearray(64 << 10))
        del big
    print(rss_mb() - before)
""")


def kept_mb(env) -> float:
    root = str(Path(__file__).resolve().parents[2])
    out = subprocess.run([sys.executable, "-c", FRAGMENT], env=dict(os.environ, PYTHONPATH=root, **env),
                         check=True, capture_output=True, text=True).stdout
    return float(out.strip())


@glibc
def test_memory_freed_while_loading_goes_back_to_the_os():
    # the 100 MB of freed buffers stay resident with malloc as it is, and are returned with loading_graphs;
    # 6.4 MB of live 64 kB blocks stay either way
    assert kept_mb({"EDGEVID_KEEP_HEAP": "1"}) > 80
    assert kept_mb({}) < 30


class Recorded(NumpySession):
    """A numpy session on a file of a given size that notes when it opens."""

    opened: list = []

    def _activate(self) -> None:
        Recorded.opened.append(self.name)
        super()._activate()


def test_the_largest_graph_is_opened_first(make_bundle, tmp_path):
    bundle = make_bundle("mixed")
    sizes = {"coarse_cnn": 30, "coarse_step": 10, "fine_cnn": 40, "fine_step": 20}
    sessions = {}
    for role, session in numpy_sessions(bundle, CountingLiteEval().fns()).items():
        path = tmp_path / (role + ".onnx")
        path.write_bytes(b"x" * sizes[role])
        sessions[role] = Recorded(session.fn, *session._specs, name=role, path=path)
    Recorded.opened = []
    with contextlib.ExitStack() as stack:
        StreamRuntime(bundle, sessions=sessions)._activate(stack)
        assert Recorded.opened == ["fine_cnn", "coarse_cnn", "fine_step", "coarse_step"]
    assert not any(s.active for s in sessions.values())
