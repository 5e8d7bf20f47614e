"""``edgevid verify BUNDLE --checkpoint CKPT``: parity of the exported graphs with the PyTorch model."""
from __future__ import annotations

import itertools

from . import print_json
from ..errors import SourceError


def main(args) -> int:
    from ..bundle import load_bundle
    from ..runtime.source import open_source

    bundle = load_bundle(args.bundle)
    # SlowFast compares clips of frames at the model's spacing: sample the source as 'edgevid run' does
    fps = bundle.policy.get("step_fps") if bundle.family == "slowfast" else None
    with open_source(args.source, fps=fps) as source:
        frames = [f.image for f in itertools.islice(source, args.frames)]
    if not frames:
        raise SourceError("source %s gave no frames" % args.source, None, "pass a video with frames")
    verify = {"slowfast": _slowfast, "prernn": _prernn}.get(bundle.family, _liteeval)
    report, text = verify(args, bundle, frames)
    print_json(report) if args.json else print(text)
    return 0 if report["ok"] else 1


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
