"""Recurrent parameters a conversion adds (docs/models.md §4.9): traditional RNN vs PreRNN (gate-dependent) vs SIH.

For a layer with D inputs and H outputs, no biases (the basis that yields the seed's claim):

    traditional   G·(D·H + H²)          new W_ih and W_h*                        (eqs. 1–3)
    PreRNN        (G − 1)·D·H + G·H²     G − 1 new copies of W_xy, plus W_h*      (eqs. 7–9; VRNN: H²)
    SIH           G·H²                   only W_h*; W_xy is reused                 (eqs. 10–12)

"PreRNN-SIH reduces the recurrent parameters by up to 82%" ([0068]) = 1 − SIH / PreRNN for LSTM at VGG16
fc6 (D = 25088, H = 4096): 1 − 4H / (3D + 4H) = 82.1%. No torch here.
"""
from __future__ import annotations

from typing import Dict, List

from ...families.prernn import GATES

SEED_CLAIM = "PreRNN-SIH reduces the recurrent parameters by up to 82% ([0068], seeds/001_664341224fa4ab8e.txt)"
VGG16_LAYERS = {"fc6": (25088, 4096), "fc7": (4096, 4096)}


def added_parameters(cell: str, d: int, h: int, *, count_wxy: bool = False) -> Dict[str, int]:
    """Parameters a conversion of a D→H layer adds per form ({traditional, prernn, sih}; sih absent for VRNN).

    ``count_wxy`` also counts the reused W_xy (D·H) for prernn and sih (docs/models.md §4.9: 64.5% for LSTM fc6).
    """
    g = GATES[cell]
    reused = d * h if count_wxy else 0
    out = {"traditional": g * (d * h + h * h),
           "prernn": (h * h if cell == "vrnn" else (g - 1) * d * h + g * h * h) + reused}
    if cell != "vrnn":
        out["sih"] = g * h * h + reused
    return out


def reduction(cell: str, d: int, h: int, *, count_wxy: bool = False) -> Dict[str, float]:
    """Fractional reductions of SIH against PreRNN (the seed's claim) and against the traditional RNN."""
    p = added_parameters(cell, d, h, count_wxy=count_wxy)
    return {"sih_vs_prernn": 1.0 - p["sih"] / p["prernn"], "sih_vs_traditional": 1.0 - p["sih"] / p["traditional"],
            "prernn_vs_traditional": 1.0 - p["prernn"] / p["traditional"]}


def parameter_table(layers: Dict[str, tuple] = VGG16_LAYERS) -> List[Dict[str, object]]:
    """One row per (layer, gated cell): D, H, added parameters per form and the reductions."""
    rows = []
    for name, (d, h) in layers.items():
        for cell in ("lstm", "gru"):
            rows.append({"layer": name, "cell": cell, "D": d, "H": h, **added_parameters(cell, d, h),
                         **{k: round(v, 4) for k, v in reduction(cell, d, h).items()}})
    return rows


def format_parameter_table(layers: Dict[str, tuple] = VGG16_LAYERS) -> str:
    """The table as text, next to the seed's claim."""
    lines = ["%-5s %-4s %7s %5s %14s %14s %12s %10s" % ("layer", "cell", "D", "H", "traditional", "PreRNN", "SIH",
                                                           "SIH vs Pre")]
    for r in parameter_table(layers):
        lines.append("%-5s %-4s %7d %5d %14d %14d %12d %9.1f%%" % (
            r["layer"], r["cell"], r["D"], r["H"], r["traditional"], r["prernn"], r["sih"], 100 * r["sih_vs_prernn"]))
    lstm_all = reduction("lstm", *VGG16_LAYERS["fc6"], count_wxy=True)["sih_vs_prernn"]
    lines.append("seed claim: %s" % SEED_CLAIM)
    lines.append("computed: %.1f%% for LSTM at fc6 (counting the reused W_xy too: %.1f%%)"
                 % (100 * reduction("lstm", *VGG16_LAYERS["fc6"])["sih_vs_prernn"], 100 * lstm_all))
    return "\n".join(lines)
