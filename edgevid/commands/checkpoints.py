"""The PyTorch model behind a bundle, read from a checkpoint: one place for ``verify`` and ``bench``.

``open_for(bundle, path)`` reads the checkpoint once and checks its family against the bundle's;
``load_model`` builds the family's model from it; ``role_graphs`` gives that model's export wrappers at the
bundle's input sizes, so PyTorch runs what each ONNX graph runs.
"""
from __future__ import annotations

from typing import Any

from .._optional import require
from ..errors import CheckpointError
from ..log import get_logger

log = get_logger(__name__)


def open_for(bundle: Any, path: Any, purpose: str) -> Any:
    """The checkpoint at ``path``, read once (family, sha256 and model come from it), of the bundle's family."""
    require("torch", purpose)
    from ..models.checkpoint import open_checkpoint

    checkpoint = open_checkpoint(path)
    check_checkpoint_family(checkpoint, bundle)
    return checkpoint


def load_model(checkpoint: Any, bundle: Any) -> Any:
    """The bundle's family's model with the checkpoint's weights."""
    if bundle.family == "liteeval":
        from ..train.liteeval import load_liteeval_checkpoint

        return load_liteeval_checkpoint(checkpoint)
    if bundle.family == "slowfast":
        from ..models.slowfast_weights import load_slowfast_checkpoint

        # foreign weight files: the bundle records the architecture it was exported with
        preset = (bundle.meta.get("checkpoint") or {}).get("preset")
        return load_slowfast_checkpoint(checkpoint, preset=preset)[0]
    from ..train.prernn import load_prernn_checkpoint

    return load_prernn_checkpoint(checkpoint)[0]


def role_graphs(model: Any, bundle: Any) -> Any:
    """role -> RoleGraph (torch module + example inputs named as the graph's inputs) at the bundle's sizes."""
    if bundle.family == "liteeval":
        from ..export.liteeval import liteeval_roles

        return liteeval_roles(model)
    if bundle.family == "slowfast":
        from ..export.slowfast import slowfast_role

        inputs = bundle.graph("clip").inputs
        return {"clip": slowfast_role(model, size=int(inputs[-1].shape[-1]), two_input=len(inputs) == 2)}
    from ..export.prernn import prernn_roles

    return prernn_roles(model, int(bundle.graph("backbone").inputs[0].shape[-1]))


def check_checkpoint_family(checkpoint, bundle) -> None:
    """CheckpointError naming both families when ``checkpoint`` is an edgevid checkpoint of another family than
    ``bundle``, or a foreign weight file where the bundle was exported from an edgevid checkpoint."""
    from ..models.checkpoint import checkpoint_family, open_checkpoint

    checkpoint = open_checkpoint(checkpoint)  # as it is when already read
    found = checkpoint_family(checkpoint)
    source = bundle.meta.get("checkpoint") or {}
    exported_from = ""
    if source.get("file"):
        exported_from = " (%s%s)" % (source["file"], ", sha256 %s…" % source["sha256"][:12] if source.get("sha256")
                                     else "")
    if found is not None and found != bundle.family:
        raise CheckpointError("the checkpoint %s is an edgevid %s checkpoint; this bundle is %s" % (
            checkpoint, found, bundle.family), None, "pass the checkpoint it was exported from" + exported_from)
    # foreign weights (PyTorchVideo, PySlowFast) are fine for a SlowFast bundle exported from such a file
    foreign_ok = bundle.family == "slowfast" and bool(source.get("preset"))
    if found is None and not foreign_ok:
        raise CheckpointError("the checkpoint %s is not an edgevid checkpoint; this bundle is %s and was exported "
                              "from one" % (checkpoint, bundle.family), "the file has no edgevid format field",
                              "pass the checkpoint it was exported from" + exported_from)
    if source.get("sha256"):
        if checkpoint.sha256 != source["sha256"]:
            log.warning("%s is not the checkpoint this bundle was exported from%s: parity is likely to fail",
                        checkpoint, exported_from)
