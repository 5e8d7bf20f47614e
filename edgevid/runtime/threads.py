"""How a stream's graph sessions share the CPU cores: intra-op threads per role, and when they spin.

An onnxruntime intra-op pool that spins keeps its idle threads busy-waiting after each run, on the
cores the next graph, the decoder and the other stages need: on 2 cores the fine CNN took 58 ms per
call inside the sequential stream against 18 ms alone. So (benchmarks/cpu_runtime_bench.py):

- sequential: one graph runs at a time, so each takes every core (``ALL``) and its threads spin
  while its run lasts only (``spin="run"``: the many small operators of a MobileNet hand work to
  threads that are awake, 1.0 ms against 1.5 ms when they sleep), then stop;
- pipelined: the stages run at once and keep the cores busy, so each session takes one thread and
  threads never spin, except the roles the family's stages class names in its ``THREADS``, e.g.
  LiteEval's serial chain, whose fine CNN is the bottleneck: it takes every core, and the stages
  ahead of it run in its gaps.

``THREADS`` (a class attribute of the family's stages) is ``{"sequential" | "pipelined": {role: n
or ALL}}``; what it leaves out takes the defaults above. ``StreamRuntime(threads=N)`` gives every
session N instead (0: the backend decides). Cores are the ones this process may run on (its
affinity mask, e.g. a container's CPU set), not the machine's.
"""
from __future__ import annotations

import os
from typing import Any, Dict, Mapping, Optional, Sequence, Union

from ..errors import ConfigError

ALL = "all"  # every core this process may run on
DEFAULT_THREADS: Mapping[str, Union[int, str]] = {"sequential": ALL, "pipelined": 1}
SPIN: Mapping[str, str] = {"sequential": "run", "pipelined": "never"}  # OrtSession ``spin``


def usable_cores() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity masks (macOS, Windows)
        return max(1, os.cpu_count() or 1)


def session_options(stages: Any, roles: Sequence[str], pipelined: bool, threads: Optional[int] = None,
                    cores: Optional[int] = None) -> Dict[str, Dict[str, Any]]:
    """``{role: session options}`` (``threads``, ``spin``) for each of the family's ``roles``.

    ``threads`` (not None) is the caller's count for every session; ``cores`` defaults to
    :func:`usable_cores`. ConfigError for a ``THREADS`` entry naming a role or mode the stages lack.
    """
    mode = "pipelined" if pipelined else "sequential"
    declared = getattr(stages, "THREADS", {})
    unknown = sorted(set(declared) - set(DEFAULT_THREADS)) + sorted(
        set(r for per_role in declared.values() for r in per_role) - set(roles))
    if unknown:
        raise ConfigError("%s.THREADS names %s" % (getattr(stages, "__name__", stages), ", ".join(unknown)),
                          "it maps sequential / pipelined to the family's roles %s" % ", ".join(roles),
                          "fix the family's THREADS")
    cores = usable_cores() if cores is None else cores
    per_role = declared.get(mode, {})
    out = {}
    for role in roles:
        count = threads if threads is not None else per_role.get(role, DEFAULT_THREADS[mode])
        out[role] = {"threads": cores if count == ALL else int(count), "spin": SPIN[mode]}
    return out
