"""Device-side streaming runtime: sources → preprocessing → policy over sessions → predictions.

Modules: ``source`` (open_source, Frame, csi_pipeline), ``preprocess``, ``policies`` (GatedPolicy),
``pipeline`` (threads and bounded queues), ``stream`` (StreamRuntime, Prediction), ``stats``,
``annotate`` (AnnotatedVideoWriter), ``cli_run`` (run_stream for ``edgevid run``).
Names below are imported on first use, so ``import edgevid.runtime`` stays light.
"""
from __future__ import annotations

_LAZY = {
    "open_source": ".source", "Frame": ".source", "Source": ".source", "csi_pipeline": ".source",
    "GatedPolicy": ".policies", "Policy": ".policies",
    "StreamRuntime": ".stream", "Prediction": ".stream",
    "StreamStats": ".stats",
    "AnnotatedVideoWriter": ".annotate",
    "run_stream": ".cli_run", "format_prediction": ".cli_run",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError("module 'edgevid.runtime' has no attribute %r" % name)


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
