"""``edgevid bench BUNDLE --out DIR`` and ``edgevid bench --compare A.json B.json`` (docs/bench.md)."""
from __future__ import annotations

import sys
from pathlib import Path

from . import print_json
from ..errors import ConfigError


def main(args) -> int:
    if args.compare:
        return compare_main(args)
    if not args.bundle or not args.out:
        raise ConfigError("edgevid bench needs a bundle and --out", "it measures a bundle into a report folder",
                          "run: edgevid bench BUNDLE --out DIR (or edgevid bench --compare A.json B.json)")
    from ..bench.run import bench

    report, errors = bench(args.bundle, args.out, overwrite=args.overwrite, source=args.source,
                           backend=args.backend, precision=args.precision, runs=args.runs, warmup=args.warmup,
                           frames=args.frames, progress=None if args.quiet else progress, eager=eager_roles(args))
    if args.json:
        print_json(report)
    else:
        print("wrote %s" % ", ".join(str(Path(args.out) / n) for n in ["bench.json", "bench.md"] + report["plots"]))
    for e in errors:  # the report says what it could not measure; the exit code says the run was incomplete
        print("edgevid bench: not measured: %s" % e, file=sys.stderr)
    return errors[0].exit_code if errors else 0


def eager_roles(args):
    """role -> RoleGraph of ``--checkpoint`` (PyTorch eager as the reference), or None without one."""
    if args.checkpoint is None:
        return None
    from ..bundle import load_bundle
    from .checkpoints import load_model, open_for, role_graphs

    bundle = load_bundle(args.bundle)
    checkpoint = open_for(bundle, args.checkpoint, "edgevid bench --checkpoint (PyTorch eager as the reference)")
    return role_graphs(load_model(checkpoint, bundle), bundle)


def progress(message: str) -> None:
    print("bench: " + message, file=sys.stderr, flush=True)


def compare_main(args) -> int:
    if args.bundle:
        raise ConfigError("a bundle and --compare given together", "--compare reads two reports, it measures nothing",
                          "run edgevid bench --compare A.json B.json without a bundle")
    from ..bench.report import compare, compare_markdown, load_report

    result = compare(load_report(Path(args.compare[0])), load_report(Path(args.compare[1])))
    if args.json:
        print_json(result)
    else:
        sys.stdout.write(compare_markdown(result))
    return 0
