"""PyTorch eager timing of a bundle's roles: the reference ONNX Runtime and TensorRT are compared with.

A bundle holds no PyTorch modules, so this needs the checkpoint the bundle was exported from; the caller (the
``edgevid bench --checkpoint`` command) builds each role's export wrapper from it (commands/checkpoints.py),
and this module times the wrapper on the same feeds the graphs got. torch is imported inside the function.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Sequence

from ..errors import ConfigError
from ..metrics import latency_summary
from .timing import time_calls


def time_eager(role: str, role_graph: Any, feeds: Sequence[Mapping[str, Any]], *, runs: int,
               warmup: int) -> Dict[str, Any]:
    """``{"role", "backend": "torch", "precision": "fp32", "artifact", "warmup", "latency_ms", "threads"}`` of the
    role's module called ``runs`` times after ``warmup`` untimed calls, in inference mode on the CPU."""
    import numpy as np
    import torch

    names = list(role_graph.example_inputs)
    missing = [n for n in names if n not in feeds[0]]
    if missing:
        raise ConfigError("the checkpoint's %s takes %s, which the bundle's graph does not" % (role, missing),
                          "the checkpoint does not describe this bundle's model",
                          "pass the checkpoint the bundle was exported from")
    calls = [[torch.from_numpy(np.ascontiguousarray(f[n])) for n in names] for f in feeds]
    module = role_graph.module.eval()
    count = [0]

    def call() -> None:
        args = calls[count[0] % len(calls)]
        count[0] += 1
        module(*args)

    with torch.inference_mode():
        seconds = time_calls(call, runs, warmup)
    return {"role": role, "backend": "torch", "precision": "fp32", "artifact": "%s (eager)" % type(role_graph.module).__name__,
            "warmup": warmup, "latency_ms": latency_summary(seconds), "threads": torch.get_num_threads()}
