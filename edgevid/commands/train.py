"""``edgevid train liteeval --data DIR --out CKPT``: train on a class-folder video data set."""
from __future__ import annotations

import sys

from ..cli import enable_progress


def main(args) -> int:
    from ..data.folder import VideoFolder, split_dataset
    from ..models.liteeval import LiteEvalConfig
    from ..train.liteeval import train_liteeval

    data = VideoFolder(args.data, num_frames=args.frames, fps=args.fps)
    if args.val:
        train_set, val_set = data, VideoFolder(args.val, num_frames=args.frames, fps=args.fps)
    else:
        train_set, val_set = split_dataset(data, args.val_split, seed=args.seed)
    config = LiteEvalConfig(num_classes=len(data.classes), labels=list(data.classes), fine_arch=args.fine_arch,
                            coarse_hidden=args.coarse_hidden, fine_hidden=args.fine_hidden)
    result = train_liteeval(config, train_set, val_set, out=args.out, epochs=args.epochs, batch_size=args.batch_size,
                            lr=args.lr, fine_fraction_target=args.fine_fraction, end_to_end=args.end_to_end,
                            coarse_weights=args.coarse_weights, fine_weights=args.fine_weights, resume=args.resume,
                            seed=args.seed, progress=enable_progress(args), cache_dir=args.cache_dir)
    print("checkpoint: %s" % result.checkpoint)
    if result.best_checkpoint:
        print("best (validation accuracy %.3f at epoch %d): %s" % (result.best_accuracy, result.best_epoch,
                                                                  result.best_checkpoint))
    print("%d training / %d validation videos, %d classes" % (len(train_set), len(val_set or []), len(data.classes)),
          file=sys.stderr)
    return 0
