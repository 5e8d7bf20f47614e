"""``edgevid info BUNDLE|FUSION|PRESET``: what a bundle or fusion bundle holds (validated on load), or what a SlowFast
preset costs."""
from __future__ import annotations

from pathlib import Path

from ..bundle import describe, load_bundle
from . import print_json
from ..errors import ConfigError
from ..models.slowfast_config import PRESETS  # torch-free: names only


def main(args) -> int:
    if not Path(args.bundle).exists():
        if args.bundle not in PRESETS:
            raise ConfigError("'%s' is neither a bundle folder nor a SlowFast preset" % args.bundle,
                              "no such folder; presets are " + ", ".join(PRESETS),
                              "pass a folder written by 'edgevid export' or one of the preset names")
        return preset_main(args)
    from ..fusion.bundle import is_fusion_bundle

    if is_fusion_bundle(args.bundle):
        return fusion_main(args)
    summary = describe(load_bundle(args.bundle))
    if args.json:
        print_json(summary)
        return 0
    print("bundle   %s (%s, %d classes)" % (summary["root"], summary["family"], summary["classes"]))
    for role, g in summary["graphs"].items():
        ins = ", ".join("%s%s" % (t["name"], t["shape"]) for t in g["inputs"])
        outs = ", ".join("%s%s" % (t["name"], t["shape"]) for t in g["outputs"])
        gm = "" if g["gmacs"] is None else "  %.4f GMACs" % g["gmacs"]
        print("  %-12s %s -> %s%s" % (role, ins, outs, gm))
        for a in g["artifacts"]:
            print("  %-12s   %-18s %s %s" % ("", a["kind"], a.get("precision") or "", a["file"]))
        print("  %-12s   precision: %s" % ("", g["precision_rule"]))
    print("policy   %s" % summary["policy"])
    print("schema   %s" % summary["schema"])
    return 0


def fusion_main(args) -> int:
    """A fusion bundle: its members (each validated as a bundle), weights and flow settings."""
    from ..fusion.bundle import load_fusion
    from ..fusion.weights import member_weight, weight_text

    fusion = load_fusion(args.bundle)
    summary = fusion.to_dict()
    if args.json:
        print_json(summary)
        return 0
    w = summary["weights"]
    print("fusion   %s (%s, %d members, %d classes)" % (args.bundle, w["method"], len(fusion.members),
                                                        len(fusion.labels)))
    for i, m in enumerate(summary["members"]):
        print("  %-12s %-8s %-6s weight %s  %s" % (m["name"], m["family"], m["modality"],
                                                  weight_text(member_weight(w["theta"], i)), m["path"]))
    print("flow     %s" % (summary["flow"] or "none (no flow member)"))
    if w["fallback"]:
        print("weights  %s: %s" % (w["fallback"], w["status"]))
    print("schema   %s" % summary["schema"])
    return 0


def preset_main(args) -> int:
    from ..models.slowfast import describe_preset  # torch: only when a preset is asked for

    info = describe_preset(args.bundle, num_classes=args.num_classes, size=args.size)
    if args.json:
        print_json(info)
        return 0
    print("preset   %s (SlowFast R%d, %d classes)" % (info["preset"], info["depth"], info["num_classes"]))
    print("params   %s" % format(info["params"], ","))
    print("GMACs    %.2f per clip at %d²" % (info["gmacs"], info["size"]))
    print("frames   %d fast (stride %d raw frames), %d slow; alpha %d, tau %d" % (
        info["frames"], info["frame_stride"], info["slow_frames"], info["alpha"], info["tau"]))
    print("slow     %s" % info["slow_indices"])
    return 0
