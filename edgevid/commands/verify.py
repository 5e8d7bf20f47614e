"""``edgevid verify BUNDLE --checkpoint CKPT``: parity of the exported graphs with the PyTorch model."""
from __future__ import annotations

import itertools

from ..cli import print_json
from ..errors import SourceError


def main(args) -> int:
    from ..bundle import load_bundle
    from ..runtime.source import open_source
    from ..verify import describe_report

    bundle = load_bundle(args.bundle)
    verify = {"prernn": _verify_prernn}.get(bundle.family, _verify_liteeval)
    with open_source(args.source) as source:
        frames = [f.image for f in itertools.islice(source, args.frames)]
    if not frames:
        raise SourceError("source %s gave no frames" % args.source, None, "pass a video with frames")
    report = verify(args.checkpoint, bundle, frames, args)
    if args.json:
        print_json(report)
    else:
        print(describe_report(report))
    return 0 if report["ok"] else 1


def _verify_liteeval(checkpoint, bundle, frames, args):
    from ..train.liteeval import load_liteeval_checkpoint
    from ..verify import verify_liteeval

    return verify_liteeval(load_liteeval_checkpoint(checkpoint), bundle, frames, backend=args.backend,
                           steps=args.frames)


def _verify_prernn(checkpoint, bundle, frames, args):
    from ..train.prernn import load_prernn_checkpoint
    from ..verify_prernn import verify_prernn

    model, _ = load_prernn_checkpoint(checkpoint)
    return verify_prernn(model, bundle, frames, backend=args.backend, steps=args.frames)
