"""``edgevid export {liteeval,slowfast,prernn} --checkpoint CKPT --out BUNDLE``: per-role ONNX graphs + bundle.json."""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import ConfigError
from ..log import get_logger

log = get_logger(__name__)


def main(args) -> int:
    from ..models.checkpoint import open_checkpoint

    args.checkpoint = open_checkpoint(args.checkpoint)  # read once: the model, its settings and its sha256
    exporters = {"liteeval": export_liteeval_main, "slowfast": export_slowfast_main, "prernn": export_prernn_main}
    bundle = exporters[args.family](args)  # argparse allows families.NAMES only
    print("bundle: %s" % bundle.root)
    for role, g in bundle.graphs.items():
        print("  %-12s %-18s %.4f GMACs" % (role, g.file, g.gmacs or 0.0), file=sys.stderr)
    return 0


def export_liteeval_main(args):
    from ..export import export_bundle
    from ..train.liteeval import load_liteeval_checkpoint

    model = load_liteeval_checkpoint(args.checkpoint)
    policy = {k: v for k, v in (("fine_cap", args.fine_cap), ("fine_window", args.fine_window)) if v is not None}
    return export_bundle(model, args.out, labels=None, policy=policy, overwrite=args.overwrite,
                         checkpoint_info=checkpoint_info(args), progress=log_progress, flow=args.checkpoint.get("flow"))


def export_slowfast_main(args):
    from ..export.slowfast import export_slowfast
    from ..models.slowfast_weights import load_slowfast_checkpoint
    from ..train.slowfast import export_settings

    model, labels = load_slowfast_checkpoint(args.checkpoint, preset=args.preset, num_classes=args.num_classes,
                                             labels=read_labels(args.labels) if args.labels else None)
    if not labels:
        raise ConfigError("%s carries no class names" % args.checkpoint, "bundles name every class",
                          "pass --labels FILE with %d lines, one name per class" % model.config.num_classes)
    info = dict(checkpoint_info(args), preset=args.preset) if args.preset else checkpoint_info(args)
    trained = export_settings(args.checkpoint)  # sampling and crop of an 'edgevid train slowfast' checkpoint
    size = args.size or trained.get("size") or 224
    resize_short = trained.get("resize_short") if size == trained.get("size") else None
    return export_slowfast(model, args.out, size=size, resize_short=resize_short or max(256, size), labels=labels,
                           two_input=args.two_input, policy=trained.get("policy"), checkpoint_info=info,
                           overwrite=args.overwrite, progress=log_progress, flow=args.checkpoint.get("flow"))


def export_prernn_main(args):
    from ..export.prernn import export_prernn
    from ..train.prernn import load_prernn_checkpoint

    model, config = load_prernn_checkpoint(args.checkpoint)
    policy = {"max_steps": args.reset_every, "scene_cut": args.scene_cut}
    return export_prernn(model, args.out, config=config, policy={k: v for k, v in policy.items() if v is not None},
                         checkpoint_info=checkpoint_info(args), overwrite=args.overwrite, progress=log_progress,
                         flow=args.checkpoint.get("flow"))


def checkpoint_info(args) -> dict:
    return {"file": args.checkpoint.path.name, "sha256": args.checkpoint.sha256}


def read_labels(path) -> list:
    try:
        lines = Path(path).read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError("cannot read the labels file %s" % path, str(e), "pass a text file, one name per line") from e
    return [line.strip() for line in lines if line.strip()]


def log_progress(done: int, total: int, what: str) -> None:
    """Export progress as log lines (four graphs: a bar would say less)."""
    log.info("[%d/%d] %s", done, total, what)
