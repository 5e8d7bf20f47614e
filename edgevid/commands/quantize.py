"""``edgevid quantize BUNDLE --precision int8|fp16``: reduced-precision graphs, the plan in bundle.json, a report."""
from __future__ import annotations

import sys

from . import print_json


def main(args) -> int:
    from ..bundle import load_bundle
    from ..quant.apply import quantize
    from ..quant.report import markdown

    bundle = load_bundle(args.bundle)
    if args.recipe:
        from ..quant.feeds import calibrate

        calibrate(bundle, args.recipe)
    options = {"method": args.method} if args.method else {}
    report = quantize(bundle, args.precision, target=args.target, roles=args.roles, force=args.force,
                      options=options, streams=args.streams, keep_float=args.keep_float,
                      progress=lambda what: print("quantize: %s" % what, file=sys.stderr))
    print_json(report) if args.json else print(markdown(report))
    missed = [name for name, entry in report["plans"].items() if not all(t["ok"] for t in entry["targets"].values())]
    if missed:
        print("targets missed by %s (see the report in %s/quantization/)" % (", ".join(missed), bundle.root),
              file=sys.stderr)
    return 0
