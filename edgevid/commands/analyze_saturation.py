"""``edgevid analyze-saturation --checkpoint CKPT --data DIR --out DIR``: gate saturation and the keep/revert
decision of a trained PreRNN layer (docs/models.md §4.8)."""
from __future__ import annotations

from . import print_json


def main(args) -> int:
    import torch

    from ..data.folder import VideoFolder
    from ..models.prernn.saturation import analyze_saturation, format_report
    from ..train.prernn import prernn_preprocessor, frames_tensor, load_prernn_checkpoint

    model, config = load_prernn_checkpoint(args.checkpoint)
    data = VideoFolder(args.data, num_frames=args.frames)
    pre = prernn_preprocessor(config.image_size)

    def clips():
        for start in range(0, len(data), max(args.batch_size, 1)):
            idx = range(start, min(start + args.batch_size, len(data)))
            yield torch.stack([frames_tensor(pre, data[i][0], config.image_size) for i in idx])

    report = analyze_saturation(model, clips(), out_dir=args.out)
    if args.json:
        print_json(report)
    else:
        print(format_report(report))
        print("report: %s/saturation.json, plot: %s/saturation.png" % (args.out, args.out))
    return 0
