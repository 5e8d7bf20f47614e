"""``edgevid verify BUNDLE --checkpoint CKPT``: parity of the exported graphs with the PyTorch model;
``edgevid verify BUNDLE --backend trt``: the bundle's engines against ONNX Runtime (verify/backends.py)."""
from __future__ import annotations

import itertools

from . import print_json
from .._optional import require
from ..errors import CheckpointError, ConfigError, SourceError
from ..log import get_logger

log = get_logger(__name__)


def main(args) -> int:
    from ..bundle import load_bundle
    from ..runtime.source import open_source

    bundle = load_bundle(args.bundle)
    if args.checkpoint is None:
        return _backends(args, bundle)  # the device's check: no torch

    if args.precision is not None:
        raise ConfigError("--precision applies without --checkpoint", "parity with PyTorch is checked on the FP32 "
                          "graphs", "drop --precision, or --checkpoint to compare engines with ONNX Runtime")
    require("torch", "edgevid verify --checkpoint (parity with PyTorch; without a checkpoint it needs no torch)")
    from ..models.checkpoint import open_checkpoint

    args.checkpoint = open_checkpoint(args.checkpoint)  # read once: family, sha256 and model come from it
    check_checkpoint_family(args.checkpoint, bundle)
    # SlowFast compares clips of frames at the model's spacing: sample the source as 'edgevid run' does
    fps = bundle.policy.get("step_fps") if bundle.rules.policy_kind == "clip" else None
    with open_source(args.source, fps=fps) as source:
        frames = [f.image for f in itertools.islice(source, args.frames)]
    if not frames:
        raise SourceError("source %s gave no frames" % args.source, None, "pass a video with frames")
    verify = {"liteeval": _liteeval, "slowfast": _slowfast, "prernn": _prernn}[bundle.family]  # families.NAMES
    report, text = verify(args, bundle, frames)
    print_json(report) if args.json else print(text)
    return 0 if report["ok"] else 1


def _backends(args, bundle) -> int:
    from ..verify import describe_backend_report, verify_backend

    report = verify_backend(bundle, args.backend, args.source, precision=args.precision, frames=args.frames)
    text, ok = describe_backend_report(report)
    print_json(report) if args.json else print(text)
    return 0 if ok else 1


def _liteeval(args, bundle, frames):
    from ..train.liteeval import load_liteeval_checkpoint
    from ..verify import describe_report, verify_liteeval

    model = load_liteeval_checkpoint(args.checkpoint)
    report = verify_liteeval(model, bundle, frames, backend=args.backend, steps=args.frames)
    return report, describe_report(report)


def _slowfast(args, bundle, frames):
    from ..models.slowfast_weights import load_slowfast_checkpoint
    from ..verify import describe_slowfast_report, verify_slowfast

    # foreign weight files: the bundle records the architecture it was exported with
    preset = (bundle.meta.get("checkpoint") or {}).get("preset")
    model, _ = load_slowfast_checkpoint(args.checkpoint, preset=preset)
    report = verify_slowfast(model, bundle, frames, clips=None, backend=args.backend)
    return report, describe_slowfast_report(report)


def _prernn(args, bundle, frames):
    from ..train.prernn import load_prernn_checkpoint
    from ..verify import describe_prernn_report, verify_prernn

    model, _ = load_prernn_checkpoint(args.checkpoint)
    report = verify_prernn(model, bundle, frames, backend=args.backend, steps=args.frames)
    return report, describe_prernn_report(report)


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
