"""Layer selection from gate saturation (docs/models.md §4.8; seed [0025], [0054]–[0062], claims 11–12).

A gate activation a is left-saturated if a < 0.1, right-saturated if a > 0.9, else unsaturated. Measured
gates: LSTM forget gates; GRU reset and update gates (VRNN has none). Rule (claim 12): keep a converted
layer iff the number of activations inside [0.1, 0.9] is strictly smaller than the number outside, over all
units, steps and sequences of its measured gates; ties and unsaturated layers revert to the feedforward form.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Iterable, Optional, Union

import numpy as np

from ...errors import ConfigError
from ...fsutil import atomic_path, write_json
from ...log import get_logger

log = get_logger(__name__)

LEFT, RIGHT = 0.1, 0.9
EDGES = np.linspace(0.0, 1.0, 11)                       # 10 bins, 0.0 … 1.0 (display)
MEASURED = {"lstm": ("f",), "gru": ("r", "z"), "vrnn": ()}


def gate_stats(acts: np.ndarray) -> Dict[str, Any]:
    """Statistics of one gate's activations [samples, H] (samples = steps × sequences).

    Per unit: L_j, R_j (fractions of samples below 0.1 / above 0.9, the patent's saturation plot); overall
    fractions; counts inside [0.1, 0.9] and outside; the 10-bin histogram (counts, edges 0.0 … 1.0).
    """
    a = np.asarray(acts, dtype=np.float64)
    if a.ndim != 2 or a.size == 0:
        raise ConfigError("gate activations of shape %s" % (a.shape,), "expected [samples, units] with data", None)
    left, right = a < LEFT, a > RIGHT
    outside = int(left.sum() + right.sum())
    hist, _ = np.histogram(np.clip(a, 0.0, 1.0), bins=EDGES)
    return {"samples": int(a.shape[0]), "units": int(a.shape[1]), "left_fraction": float(left.mean()),
            "right_fraction": float(right.mean()), "unit_left": left.mean(0).round(6).tolist(),
            "unit_right": right.mean(0).round(6).tolist(), "inside": int(a.size - outside), "outside": outside,
            "histogram": hist.astype(int).tolist(), "edges": EDGES.round(2).tolist()}


def decide(cell: str, gates: Dict[str, Dict[str, Any]]) -> Dict[str, Any]:
    """Claim 12 over the measured gates: keep iff inside < outside (strictly); VRNN: no gates, no decision."""
    if not MEASURED.get(cell):
        return {"keep": None, "inside": 0, "outside": 0,
                "reason": "a %s layer has no gates; the saturation rule does not apply" % cell}
    inside = sum(gates[g]["inside"] for g in MEASURED[cell])
    outside = sum(gates[g]["outside"] for g in MEASURED[cell])
    keep = inside < outside
    reason = ("%d activations inside [0.1, 0.9] %s %d outside: %s" % (
        inside, "<" if keep else (">=" if inside > outside else "=="), outside,
        "saturated, keep the recurrent layer" if keep else "not saturated, revert to the feedforward layer"))
    return {"keep": keep, "inside": inside, "outside": outside, "reason": reason}


def layer_report(cell: str, acts: Dict[str, np.ndarray]) -> Dict[str, Any]:
    """Stats of the measured gates of one layer ({gate: [samples, H]}) and the decision."""
    missing = [g for g in MEASURED[cell] if g not in acts]
    if missing:
        raise ConfigError("gate activations %s of a %s layer are missing" % (missing, cell), None,
                          "record them with recording_gates while running sequences")
    gates = {g: gate_stats(acts[g]) for g in MEASURED[cell]}
    return {"cell": cell, "gates": gates, "decision": decide(cell, gates)}


def collect_gate_activations(model, sequences: Iterable) -> Dict[str, Dict[str, np.ndarray]]:
    """Run clips [N,T,3,S,S] (torch tensors) through ``model`` with state carried across each clip's frames;
    returns {recurrence name: {gate: [N·T summed over clips, H]}} of every recorded gate."""
    import torch

    from .cells import recording_gates
    from ..modes import eval_mode

    merged: Dict[str, Dict[str, list]] = {}
    with eval_mode(model), torch.no_grad():
        for clip in sequences:
            with recording_gates(model) as rec:
                model(clip)
            for layer, gates in rec.items():
                for g, steps in gates.items():
                    merged.setdefault(layer, {}).setdefault(g, []).append(torch.cat(steps, 0).cpu().numpy())
    if not merged:
        raise ConfigError("no sequences were run", None, "give at least one clip")
    return {layer: {g: np.concatenate(v, 0) for g, v in gates.items()} for layer, gates in merged.items()}


def analyze_saturation(model, sequences: Iterable, out_dir: Optional[Union[str, Path]] = None) -> Dict[str, Any]:
    """Gate saturation of every converted layer of ``model`` on ``sequences``; with ``out_dir`` writes
    ``saturation.json`` and ``saturation.png``. Returns the report ({"layers": {name: layer_report}})."""
    acts = collect_gate_activations(model, sequences)
    cells = {name: m.cell for name, m in _recurrences(model).items()}
    report = {"rule": "keep iff activations inside [%.1f, %.1f] < outside (claim 12); ties revert" % (LEFT, RIGHT),
              "model": dict(getattr(model, "info", {})),
              "layers": {name: layer_report(cells[name], acts.get(name, {})) for name in cells}}
    for name, r in report["layers"].items():
        log.info("%s (%s): %s", name, r["cell"], r["decision"]["reason"])
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "saturation.json", report)
        plot_saturation(report, out / "saturation.png")
    return report


def _recurrences(model) -> Dict[str, Any]:
    from .cells import Recurrence

    return {name or "recurrence": m for name, m in model.named_modules() if isinstance(m, Recurrence)}


def plot_saturation(report: Dict[str, Any], path: Union[str, Path]) -> Path:
    """One row per layer and measured gate: 10-bin histogram and the saturation plot (L_j vs R_j per unit)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(name, g, s) for name, r in report["layers"].items() for g, s in r["gates"].items()]
    fig, axes = plt.subplots(max(len(rows), 1), 2, figsize=(9, 3.2 * max(len(rows), 1)), squeeze=False)
    for (name, g, s), (ax_h, ax_s) in zip(rows, axes):
        counts = np.asarray(s["histogram"], dtype=float)
        ax_h.bar(np.asarray(s["edges"][:-1]) + 0.05, counts / max(counts.sum(), 1), width=0.09)
        ax_h.set(title="%s gate %s" % (name, g), xlabel="activation", ylabel="fraction", xlim=(0, 1))
        ax_s.scatter(s["unit_left"], s["unit_right"], s=6)
        ax_s.plot([0, 1], [1, 0], "k--", lw=0.8)   # saturation line L + R = 1
        ax_s.set(title="saturation plot", xlabel="fraction left-saturated", ylabel="fraction right-saturated",
                 xlim=(0, 1), ylim=(0, 1))
    if not rows:
        axes[0][0].text(0.5, 0.5, "no gates (VRNN)", ha="center")
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(str(tmp), format="png", dpi=80)
    plt.close(fig)
    return path


def format_report(report: Dict[str, Any]) -> str:
    """Short text for the CLI."""
    return "\n".join("%s (%s): %s" % (n, r["cell"], r["decision"]["reason"]) for n, r in report["layers"].items()) \
        or json.dumps(report)
