"""``edgevid bench`` end to end on a fixture bundle: bench.json, bench.md and a PNG written, progress on stderr;
--compare; refusals as exit codes of the error tree."""
from __future__ import annotations

import json

import pytest

from edgevid.cli import main
from edgevid.errors import ConfigError, DataError
from tests.helpers import bundles as fixture_bundles

pytest.importorskip("onnxruntime")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def bench(tmp_path, name, out, *extra):
    return main(["bench", str(fixture_bundles.committed(name)), "--out", str(tmp_path / out), "--runs", "4",
                 "--warmup", "50"] + list(extra))  # warm-up far longer than the one zero input: it goes round


def test_bench_writes_the_report_the_markdown_and_a_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert bench(tmp_path, fixture_bundles.LITEEVAL["fine"], "out") == 0
    out = tmp_path / "out"
    report = json.loads((out / "bench.json").read_text())
    assert report["schema"] == "edgevid.bench/1"
    assert report["plots"] and all((out / p).read_bytes().startswith(PNG_MAGIC) for p in report["plots"])
    assert {r["role"] for r in report["graphs"]["results"]} == {"coarse_cnn", "coarse_step", "fine_cnn", "fine_step"}
    assert all(r["latency_ms"]["n"] == 4 for r in report["graphs"]["results"])
    assert report["context"]["matmul_peak"]["peak_gflops"] > 0
    assert "## Graphs" in (out / "bench.md").read_text()
    captured = capsys.readouterr()
    assert "bench: graphs: fine_cnn on ort at fp32" in captured.err  # progress
    assert "bench.json" in captured.out


def test_an_output_folder_with_files_is_refused(tmp_path, capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    assert bench(tmp_path, fixture_bundles.CLIP, "out") == ConfigError.exit_code
    assert "not empty" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["keep.txt"]  # refused before writing
    assert bench(tmp_path, fixture_bundles.CLIP, "out", "--overwrite", "--json") == 0
    assert json.loads(capsys.readouterr().out)["schema"] == "edgevid.bench/1"
    assert (tmp_path / "out" / "keep.txt").read_text() == "x"


def test_a_precision_the_bundle_lacks_is_refused_with_its_exit_code(tmp_path, capsys):
    code = bench(tmp_path, fixture_bundles.LITEEVAL["fine"], "out", "--precision", "fp16")
    assert code == 4  # ManifestError
    assert "no fp16 graph" in capsys.readouterr().err and not (tmp_path / "out" / "bench.json").exists()


def test_compare_prints_ratios_and_refuses_other_schemas(tmp_path, capsys):
    assert bench(tmp_path, fixture_bundles.CLIP, "a") == 0
    assert bench(tmp_path, fixture_bundles.CLIP, "b") == 0
    capsys.readouterr()
    a, b = str(tmp_path / "a" / "bench.json"), str(tmp_path / "b" / "bench.json")
    assert main(["bench", "--compare", a, b, "--json"]) == 0
    rows = {r["figure"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    mean = rows["graphs.clip/ort/fp32.mean"]
    assert mean["ratio"] == pytest.approx(mean["b"] / mean["a"])
    other = json.loads((tmp_path / "b" / "bench.json").read_text())
    other["schema"] = "edgevid.bench/2"
    (tmp_path / "b2.json").write_text(json.dumps(other))
    assert main(["bench", "--compare", a, str(tmp_path / "b2.json")]) == DataError.exit_code
    assert "different schemas" in capsys.readouterr().err


def test_bench_without_bundle_or_out_says_how(tmp_path, capsys):
    assert main(["bench", "--out", str(tmp_path / "o")]) == ConfigError.exit_code
    assert "needs a bundle and --out" in capsys.readouterr().err
