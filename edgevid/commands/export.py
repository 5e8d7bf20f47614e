"""``edgevid export liteeval --checkpoint CKPT --out BUNDLE``: per-role ONNX graphs + bundle.json."""
from __future__ import annotations

import sys
from pathlib import Path

from ..fsutil import sha256_file
from ..log import get_logger

log = get_logger(__name__)


def main(args) -> int:
    from ..export import export_bundle
    from ..train.liteeval import load_liteeval_checkpoint

    model = load_liteeval_checkpoint(args.checkpoint)
    policy = {k: v for k, v in (("fine_cap", args.fine_cap), ("fine_window", args.fine_window)) if v is not None}
    bundle = export_bundle(model, args.out, labels=None, policy=policy, overwrite=args.overwrite,
                           checkpoint_info={"file": Path(args.checkpoint).name,
                                            "sha256": sha256_file(args.checkpoint)},
                           progress=log_progress)
    print("bundle: %s" % bundle.root)
    for role, g in bundle.graphs.items():
        print("  %-12s %-18s %.4f GMACs" % (role, g.file, g.gmacs or 0.0), file=sys.stderr)
    return 0


def log_progress(done: int, total: int, what: str) -> None:
    """Export progress as log lines (four graphs: a bar would say less)."""
    log.info("[%d/%d] %s", done, total, what)
