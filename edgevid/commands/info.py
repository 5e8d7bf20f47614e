"""``edgevid info BUNDLE``: what a bundle holds (validated on load)."""
from __future__ import annotations

from ..bundle import describe, load_bundle
from ..cli import print_json


def main(args) -> int:
    summary = describe(load_bundle(args.bundle))
    if args.json:
        print_json(summary)
        return 0
    print("bundle   %s (%s, %d classes)" % (summary["root"], summary["family"], summary["classes"]))
    for role, g in summary["graphs"].items():
        ins = ", ".join("%s%s" % (t["name"], t["shape"]) for t in g["inputs"])
        outs = ", ".join("%s%s" % (t["name"], t["shape"]) for t in g["outputs"])
        gm = "" if g["gmacs"] is None else "  %.4f GMACs" % g["gmacs"]
        print("  %-12s %s  %s -> %s%s" % (role, g["precision"], ins, outs, gm))
    print("policy   %s" % summary["policy"])
    return 0
