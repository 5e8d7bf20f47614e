"""Device-side streaming runtime: sources → preprocessing → policy over sessions → predictions.

Modules: ``source`` (open_source, Frame, csi_pipeline), ``policies`` (GatedPolicy; preprocessing is
``edgevid.preprocess``, shared with training),
``pipeline`` (threads and bounded queues), ``stages`` (the per-family stage contract; LiteEval's in
``gated``, SlowFast's in ``clip``, PreRNN's in ``recurrent``), ``stream`` (StreamRuntime), ``prediction`` (Prediction), ``stats``,
``annotate`` (AnnotatedVideoWriter), ``cli_run`` (run_stream for ``edgevid run``), ``device`` (LiteEval's and
PreRNN's plans on TensorRT engines with their tensors kept on the GPU).
Names below are imported on first use, so ``import edgevid.runtime`` stays light.
"""
from __future__ import annotations

from .._optional import lazy_attributes

_LAZY = {
    "open_source": ".source", "Frame": ".source", "Source": ".source", "csi_pipeline": ".source",
    "GatedPolicy": ".policies", "Policy": ".policies", "RecurrentPolicy": ".recurrent",
    "ClipPolicy": ".clip",
    "StreamRuntime": ".stream", "Prediction": ".prediction",
    "StreamStats": ".stats",
    "AnnotatedVideoWriter": ".annotate",
    "run_stream": ".cli_run", "format_prediction": ".cli_run",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)
