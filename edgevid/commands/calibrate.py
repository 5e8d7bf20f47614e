"""``edgevid calibrate BUNDLE --recipe R``: calibration feeds recorded through the runtime, added to the bundle."""
from __future__ import annotations

import sys

from . import enable_progress, print_json


def main(args) -> int:
    from ..quant.feeds import calibrate
    from ..quant.recipe import load_recipe

    recipe = load_recipe(args.recipe)
    bar = _bar(recipe.max_frames) if enable_progress(args) else None
    try:
        result = calibrate(args.bundle, recipe, backend=args.backend,
                           progress=None if bar is None else lambda n: bar.update(n - bar.n))
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        print_json(result.to_dict())
        return 0
    print("calibration %s: %d frames from %d stream(s), data sha256 %s…" % (
        recipe.name, result.frames, result.streams, result.data_sha256[:12]))
    for artifact in result.artifacts:
        info = artifact.info
        print("  %-12s %5d of %5d calls kept  %s" % (artifact.file.split("/")[-1][:-4], info["samples"], info["calls"],
                                                     artifact.file))
    print("added to %s" % result.bundle.root, file=sys.stderr)
    return 0


def _bar(total):
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", desc="calibrating", file=sys.stderr)
