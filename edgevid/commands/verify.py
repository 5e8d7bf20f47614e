"""``edgevid verify BUNDLE --checkpoint CKPT``: parity of the exported graphs with the PyTorch model."""
from __future__ import annotations

import itertools

from ..cli import print_json
from ..errors import SourceError


def main(args) -> int:
    from ..bundle import load_bundle
    from ..runtime.source import open_source
    from ..train.liteeval import load_liteeval_checkpoint
    from ..verify import describe_report, verify_liteeval

    bundle = load_bundle(args.bundle)
    model = load_liteeval_checkpoint(args.checkpoint)
    with open_source(args.source) as source:
        frames = [f.image for f in itertools.islice(source, args.frames)]
    if not frames:
        raise SourceError("source %s gave no frames" % args.source, None, "pass a video with frames")
    report = verify_liteeval(model, bundle, frames, backend=args.backend, steps=args.frames)
    if args.json:
        print_json(report)
    else:
        print(describe_report(report))
    return 0 if report["ok"] else 1
