"""``edgevid info PRESET``: parameters, GMACs, frames, α and slow indices of a SlowFast preset."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")



def test_info_preset_json(capsys, edgevid_cli):
    assert edgevid_cli(["info", "r50_4x16", "--size", "256", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["params"] == 34_480_216 and round(info["gmacs"], 2) == 36.10
    assert (info["frames"], info["alpha"], info["frame_stride"]) == (32, 8, 2)
    assert info["slow_indices"] == [0, 10, 20, 31]


def test_info_preset_text_with_class_count(capsys, edgevid_cli):
    assert edgevid_cli(["info", "r50_8x8", "--num-classes", "400", "--size", "224"]) == 0
    out = capsys.readouterr().out
    assert "34,566,488" in out and "50.31 per clip at 224²" in out and "[0, 4, 8, 13, 17, 22, 26, 31]" in out


def test_info_unknown_name_lists_the_presets(capsys, edgevid_cli, tmp_path):
    assert edgevid_cli(["info", str(tmp_path / "r50_9x9")]) == 2
    err = capsys.readouterr().err
    assert "neither a bundle folder nor a SlowFast preset" in err and "r50_4x16, r50_8x8, r101_8x8, r101_16x8" in err
