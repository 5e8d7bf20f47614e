"""``edgevid train liteeval|prernn --data DIR --out CKPT``: train on a class-folder video data set."""
from __future__ import annotations

import sys

from ..cli import enable_progress


def _datasets(args):
    from ..data.folder import VideoFolder, split_dataset

    data = VideoFolder(args.data, num_frames=args.frames, fps=args.fps)
    if args.val:
        return data, data, VideoFolder(args.val, num_frames=args.frames, fps=args.fps)
    return (data,) + split_dataset(data, args.val_split, seed=args.seed)


def main(args) -> int:
    if args.family == "prernn":
        return _main_prernn(args)
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
        print("best (validation accuracy %.3f at epoch %d): %s" % (result.best_accuracy, result.best_epoch,
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
        print("best (validation accuracy %.3f): %s" % (result.best_accuracy, result.best_checkpoint))
    print("%d training / %d validation videos, %d classes" % (len(train_set), len(val_set), len(data.classes)),
          file=sys.stderr)
    return 0
