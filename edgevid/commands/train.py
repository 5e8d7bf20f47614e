"""``edgevid train liteeval|prernn --data DIR --out CKPT``: train on a class-folder video data set."""
from __future__ import annotations

import sys

from . import enable_progress, flow_spec


def _datasets(args):
    from ..data.folder import VideoFolder, split_dataset

    flow = flow_spec(args)
    data = VideoFolder(args.data, num_frames=args.frames, fps=args.fps, flow=flow)
    if args.val:
        return data, data, VideoFolder(args.val, num_frames=args.frames, fps=args.fps, flow=flow)
    return (data,) + split_dataset(data, args.val_split, seed=args.seed)


def main(args) -> int:
    if args.family == "fusion":
        from .fusion import train_fusion_main

        return train_fusion_main(args)
    return {"liteeval": _main_liteeval, "prernn": _main_prernn, "slowfast": _main_slowfast}[args.family](args)


def _main_liteeval(args) -> int:
    from ..models.liteeval import LiteEvalConfig
    from ..train.liteeval import train_liteeval

    data, train_set, val_set = _datasets(args)
    config = LiteEvalConfig(num_classes=len(data.classes), labels=list(data.classes), fine_arch=args.fine_arch,
                            coarse_hidden=args.coarse_hidden, fine_hidden=args.fine_hidden)
    result = train_liteeval(config, train_set, val_set, out=args.out, epochs=args.epochs, batch_size=args.batch_size,
                            lr=args.lr, fine_fraction_target=args.fine_fraction, tau_rate=args.tau_rate,
                            end_to_end=args.end_to_end,
                            coarse_weights=args.coarse_weights, fine_weights=args.fine_weights, resume=args.resume,
                            seed=args.seed, progress=enable_progress(args), cache_dir=args.cache_dir)
    print("checkpoint: %s" % result.checkpoint)
    if result.best_checkpoint:
        print("best (validation accuracy %s at epoch %d): %s" % (_pct(result.best_accuracy), result.best_epoch,
                                                                  result.best_checkpoint))
    print("%d training / %d validation videos, %d classes" % (len(train_set), len(val_set or []), len(data.classes)),
          file=sys.stderr)
    return 0


def _main_prernn(args) -> int:
    from ..models.prernn import PreRNNConfig
    from ..train.prernn import train_prernn

    data, train_set, val_set = _datasets(args)
    config = PreRNNConfig(num_classes=len(data.classes), labels=list(data.classes), arch=args.arch, layer=args.layer,
                          cell=args.cell, form=args.form, hidden=args.hidden, image_size=args.image_size)
    result = train_prernn(config, train_set, val_set, out=args.out, epochs=args.epochs, batch_size=args.batch_size,
                          lr=args.lr, weights=args.weights, resume=args.resume, seed=args.seed,
                          cache_dir=args.cache_dir, progress=enable_progress(args))
    print("checkpoint: %s" % result.checkpoint)
    if result.best_checkpoint:
        print("best (validation accuracy %s): %s" % (_pct(result.best_accuracy), result.best_checkpoint))
    print("%d training / %d validation videos, %d classes" % (len(train_set), len(val_set), len(data.classes)),
          file=sys.stderr)
    return 0


def _main_slowfast(args) -> int:
    from ..data.folder import split_dataset
    from ..models.slowfast_config import preset_config
    from ..train.slowfast import slowfast_folder, train_slowfast

    probe = preset_config(args.preset)  # the clip geometry decides the decoding rate
    data = slowfast_folder(args.data, probe, args.train_fps, flow=flow_spec(args))
    config = preset_config(args.preset, num_classes=len(data.classes), labels=list(data.classes))
    if args.val:
        train_set, val_set = data, slowfast_folder(args.val, config, args.train_fps, flow=flow_spec(args))
    else:
        train_set, val_set = split_dataset(data, args.val_split, seed=args.seed)
    result = train_slowfast(config, train_set, val_set, out=args.out, epochs=args.epochs, batch_size=args.batch_size,
                            lr=args.lr, size=args.size, resize_short=args.resize_short, train_fps=args.train_fps,
                            weights=args.weights, resume=args.resume, seed=args.seed, cache_dir=args.cache_dir,
                            progress=enable_progress(args), threads=args.threads)
    print("checkpoint: %s" % result.checkpoint)
    if result.best_checkpoint:
        print("best (validation accuracy %s at epoch %d): %s" % (_pct(result.best_accuracy), result.best_epoch,
                                                                  result.best_checkpoint))
    print("%d training / %d validation videos, %d classes, clips of %d frames at %.3g fps" % (
        len(train_set), len(val_set), len(data.classes), config.fast_frames, result.sampling["step_fps"]),
        file=sys.stderr)
    return 0


def _pct(share) -> str:
    """A share (0..1) as a percentage with one decimal: 0.1 -> 10.0%."""
    return "n/a" if share is None else "%.1f%%" % (100.0 * share)
