"""Gate-saturation analysis and the keep/revert rule (docs/models.md §4.8)."""
import json

import numpy as np
import pytest
import torch

from edgevid.models.prernn import convert, small_vgg
from edgevid.models.prernn.saturation import analyze_saturation, decide, gate_stats, layer_report


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    pass


def test_gate_stats_known_answer():
    acts = np.array([[0.05, 0.5], [0.95, 0.5], [0.02, 0.91], [0.5, 0.1]])
    s = gate_stats(acts)
    assert s["outside"] == 4 and s["inside"] == 4          # 0.1 itself is inside [0.1, 0.9]
    assert s["unit_left"] == [0.5, 0.0] and s["unit_right"] == [0.25, 0.25]
    assert s["histogram"] == [2, 1, 0, 0, 0, 3, 0, 0, 0, 2] and len(s["edges"]) == 11
    assert s["left_fraction"] == 0.25 and s["right_fraction"] == 0.25


def test_rule_strict_majority_ties_revert_and_vrnn():
    sat = np.array([[0.01, 0.99, 0.5]] * 4)       # 8 outside, 4 inside → keep
    uns = np.array([[0.4, 0.6, 0.95]] * 4)        # 4 outside, 8 inside → revert
    tie = np.array([[0.05, 0.5]] * 4)             # 4 vs 4 → revert
    assert layer_report("lstm", {"f": sat, "i": uns})["decision"]["keep"] is True   # LSTM measures f only
    assert layer_report("lstm", {"f": uns})["decision"]["keep"] is False
    assert layer_report("lstm", {"f": tie})["decision"]["keep"] is False
    gru = layer_report("gru", {"r": sat, "z": uns})   # 12 outside vs 12 inside over r and z: tie
    assert gru["decision"]["outside"] == gru["decision"]["inside"] == 12 and gru["decision"]["keep"] is False
    assert decide("vrnn", {})["keep"] is None


def test_end_to_end_on_tiny_converted_model(tmp_path):
    torch.manual_seed(0)
    model = convert(small_vgg(3), layer="fc6", cell="gru", form="sih")
    with torch.no_grad():   # large recurrent weights drive the gates into saturation
        model.recurrence.weight_hh.mul_(40.0)
        model.drive.weight.mul_(20.0)
    clips = [torch.randn(2, 5, 3, 16, 16) for _ in range(2)]
    report = analyze_saturation(model, clips, out_dir=tmp_path)
    layer = report["layers"]["recurrence"]
    assert set(layer["gates"]) == {"r", "z"} and layer["gates"]["r"]["samples"] == 2 * 2 * 5
    assert layer["decision"]["keep"] is True, layer["decision"]
    saved = json.loads((tmp_path / "saturation.json").read_text())
    assert saved["layers"]["recurrence"]["decision"] == layer["decision"]
    assert (tmp_path / "saturation.png").read_bytes()[:4] == b"\x89PNG"
    small = convert(small_vgg(3), layer="fc6", cell="lstm", form="prernn")
    with torch.no_grad():   # tiny weights: every gate near sigm(0) = 0.5 → revert
        small.drive.weight.mul_(1e-3)
        small.drive.bias.zero_()
        small.recurrence.weight_hh.mul_(1e-3)
    assert analyze_saturation(small, clips)["layers"]["recurrence"]["decision"]["keep"] is False
