"""``edgevid verify BUNDLE --checkpoint CKPT``: parity of the exported graphs with the PyTorch model;
``edgevid verify BUNDLE --backend trt``: the bundle's engines against ONNX Runtime (verify/backends.py)."""
from __future__ import annotations

import itertools

from . import print_json
from ..errors import ConfigError, SourceError
from .checkpoints import load_model, open_for


def main(args) -> int:
    from ..bundle import load_bundle
    from ..runtime.source import open_source

    bundle = load_bundle(args.bundle)
    if args.checkpoint is None:
        return _backends(args, bundle)  # the device's check: no torch

    if args.precision is not None:
        raise ConfigError("--precision applies without --checkpoint", "parity with PyTorch is checked on the FP32 "
                          "graphs", "drop --precision, or --checkpoint to compare engines with ONNX Runtime")
    args.checkpoint = open_for(bundle, args.checkpoint,
                               "edgevid verify --checkpoint (parity with PyTorch; without a checkpoint it needs no torch)")
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
    from ..verify import describe_report, verify_liteeval

    model = load_model(args.checkpoint, bundle)
    report = verify_liteeval(model, bundle, frames, backend=args.backend, steps=args.frames)
    return report, describe_report(report)


def _slowfast(args, bundle, frames):
    from ..verify import describe_slowfast_report, verify_slowfast

    model = load_model(args.checkpoint, bundle)
    report = verify_slowfast(model, bundle, frames, clips=None, backend=args.backend)
    return report, describe_slowfast_report(report)


def _prernn(args, bundle, frames):
    from ..verify import describe_prernn_report, verify_prernn

    model = load_model(args.checkpoint, bundle)
    report = verify_prernn(model, bundle, frames, backend=args.backend, steps=args.frames)
    return report, describe_prernn_report(report)
