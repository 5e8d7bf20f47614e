"""``edgevid train fusion --member B1 --member B2 --data HELD_OUT --out FUSION``: fusion weights of bundles."""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import ConfigError
from . import enable_progress, flow_spec


def train_fusion_main(args) -> int:
    from ..fusion.learn import learn_fusion
    from ..fusion.weights import member_weight, weight_text

    members = args.member or []
    if len(members) < 2:
        raise ConfigError("train fusion got %d --member bundle(s)" % len(members),
                          "fusion combines two or more models' scores", "pass --member BUNDLE twice or more")
    flow = None
    if args.flow is not None:  # asked for explicitly: it must be what the flow members were trained on
        flow = flow_spec(args).to_dict()
    fusion = learn_fusion(named_members(members), args.data, args.out, method=args.method,
                          nu=args.nu, fallback=args.fallback, flow=flow, overwrite=False,
                          progress=_progress(enable_progress(args)))
    held = fusion.meta["held_out"]
    print("fusion bundle: %s" % args.out)
    theta = fusion.weights.theta
    for i, m in enumerate(fusion.members):
        weight = weight_text(member_weight(theta, i))
        print("  %-12s %-8s %-6s weight %s, held-out accuracy %.1f%%" % (
            m.name, m.bundle.family, m.modality, weight, 100 * held["accuracy"][m.name]), file=sys.stderr)
    other, compared = next(iter(held["compare"].items()))
    print("  fused (%s) %.1f%%, %s %.1f%%, on the %d held-out videos the weights were learned on%s" % (
        fusion.weights.method, 100 * held["accuracy"]["fused"], other, 100 * compared["accuracy"], held["videos"],
        "" if fusion.weights.fallback is None else "; the LP found no weighting: %s (%s)" % (
            fusion.weights.fallback, fusion.weights.status)), file=sys.stderr)
    return 0


def named_members(specs) -> list:
    """(name, path) per ``--member``: ``NAME=PATH``, or a bare PATH named after its folder (numbered where two
    folders share a name)."""
    pairs = [spec.split("=", 1) if "=" in spec and spec.split("=", 1)[0].isidentifier() else [None, spec]
             for spec in specs]
    folders = [Path(path).resolve().name or "member" for _, path in pairs]
    names = [n or (f if folders.count(f) == 1 else "%s%d" % (f, folders[:i].count(f) + 1))
             for i, ((n, _), f) in enumerate(zip(pairs, folders))]
    return [(name, path) for name, (_, path) in zip(names, pairs)]


def _progress(enabled: bool):
    """A tqdm bar over the held-out videos, made at the first call (the total comes with it)."""
    if not enabled:
        return None
    from .._optional import require

    bar = []

    def show(done: int, total: int) -> None:
        if not bar:
            bar.append(require("tqdm", "progress bars").tqdm(total=total, desc="scoring held-out videos",
                                                            leave=False, dynamic_ncols=True))
        bar[0].update(done - bar[0].n)
        if done == total:
            bar[0].close()
    return show
