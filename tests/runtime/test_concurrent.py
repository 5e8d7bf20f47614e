"""Two runtimes in one process, and two processes on one bundle, at the same time: each gets what it gets alone."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from edgevid.runtime.stream import StreamRuntime
from tests.helpers.bundles import LITEEVAL, PRERNN, committed

pytest.importorskip("onnxruntime")
pytest.importorskip("cv2")
ROOT = Path(__file__).resolve().parents[2]
SOURCE = "synthetic:seed=5,segments=6,frames=12"


def labels(bundle):
    with StreamRuntime(bundle) as runtime:
        return [(p.frame_index, p.label, round(p.score, 5), p.path) for p in runtime.run(SOURCE)]


def test_two_runtimes_in_one_process_at_once_give_what_each_gives_alone():
    bundles = [committed(LITEEVAL["mixed"]), committed(PRERNN["lstm"]), committed(LITEEVAL["mixed"])]
    alone = [labels(b) for b in bundles]
    together, errors = [None] * len(bundles), []

    def work(i):
        try:
            together[i] = labels(bundles[i])
        except BaseException as e:  # reported below: a thread's failure must fail the test
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(bundles))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and together == alone and all(alone)


def test_two_processes_on_one_bundle_at_once_give_what_one_gives_alone(tmp_path):
    cmd = [sys.executable, "-m", "edgevid", "run", str(committed(LITEEVAL["mixed"])), "--source", SOURCE, "--json"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    alone = subprocess.run(cmd, capture_output=True, text=True, cwd=str(ROOT), env=env, check=True).stdout
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(ROOT), env=env)
             for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e for _, e in outs]

    def predictions(text):  # latency differs run to run; the predictions must not
        import json
        return [{k: v for k, v in json.loads(line).items() if k not in ("latency_ms", "latency")}
                for line in text.splitlines()]

    assert predictions(outs[0][0]) == predictions(outs[1][0]) == predictions(alone) != []
