"""The report: schema round trip, the output folder rule, artifact sizes, markdown, compare and its refusals, and
sections that could not be measured saying why."""
from __future__ import annotations

import copy

import pytest

from edgevid.bench import report as rep
from edgevid.bench import run
from edgevid.bundle import load_bundle
from edgevid.errors import ConfigError, DataError, SourceError
from tests.helpers import bundles as fixture_bundles


def result(role, precision, mean, gflops=None):
    return {"role": role, "backend": "ort", "precision": precision, "artifact": role + ".onnx", "warmup": 1,
            "latency_ms": {"n": 3, "mean": mean, "p50": mean, "p90": mean, "p99": mean, "min": mean, "max": mean,
                           "fps": 1000.0 / mean}, "gflops": gflops, "peak_share": None, "vs_fp32": 1.0}


def sample_report():
    b = load_bundle(fixture_bundles.committed(fixture_bundles.CLIP))
    r = rep.new_report(b, {"runs": 3})
    r["graphs"] = {"runs": 3, "warmup": 1, "precision_asked": None, "kept_fp32": {}, "inputs": {
        "clip": {"kind": "zeros of the declared input shapes", "samples": 1, "why": "no feeds"}},
        "results": [result("clip", "fp32", 2.0, 50.0)], "skipped_backends": {"trt": "not installed"},
        "torch": {"not_measured": "no checkpoint"}}
    r["files"] = rep.artifact_files(b)
    r["streams"] = {"throughput": {"fps": 40.0}, "drops": 0}
    return r


def test_the_report_round_trips_through_bench_json(tmp_path):
    r = sample_report()
    written = rep.write_report(r, tmp_path / "out")
    assert [p.name for p in written] == ["bench.json", "bench.md"]
    assert rep.load_report(tmp_path / "out" / "bench.json") == r
    assert r["schema"] == rep.SCHEMA and set(rep.SECTIONS) <= set(r)
    assert not list((tmp_path / "out").glob(".*"))  # no temporary file left behind


def test_files_are_the_real_sizes():
    b = load_bundle(fixture_bundles.committed(fixture_bundles.CLIP))
    files = rep.artifact_files(b)
    assert files["clip"] == [{"kind": "onnx", "precision": "fp32", "target": None, "file": "clip.onnx",
                              "bytes": (b.root / "clip.onnx").stat().st_size}]


def test_markdown_has_the_tables_and_what_was_not_measured():
    r = sample_report()
    text = rep.markdown(r)
    assert "| clip | ort | fp32 | 2 | 2 |" in text
    assert "trt not timed: not installed" in text and "PyTorch eager not timed" in text
    assert "## Memory\n\nnot measured: not run" in text
    assert "| clip | onnx | fp32 |" in text


def test_an_existing_folder_with_files_is_refused_unless_overwrite(tmp_path):
    rep.check_out_dir(tmp_path / "new", overwrite=False)  # absent: fine
    (tmp_path / "empty").mkdir()
    rep.check_out_dir(tmp_path / "empty", overwrite=False)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not empty") as e:
        rep.check_out_dir(tmp_path / "full", overwrite=False)
    assert "notes.txt" in str(e.value) and "--overwrite" in str(e.value)
    rep.check_out_dir(tmp_path / "full", overwrite=True)
    with pytest.raises(ConfigError, match="is a file"):
        rep.check_out_dir(tmp_path / "full" / "notes.txt", overwrite=True)


def test_compare_gives_b_over_a_for_figures_both_hold():
    a, b = sample_report(), sample_report()
    b["graphs"]["results"] = [result("clip", "fp32", 4.0, 25.0), result("clip", "int8", 1.0)]
    b["streams"]["throughput"]["fps"] = 20.0
    a["context"] = {"matmul_peak": {"peak_gflops": 100.0, "int8_peak_gops": "unavailable: no onnx"}}
    b["context"] = {"matmul_peak": {"peak_gflops": 150.0, "int8_peak_gops": 600.0}}
    out = rep.compare(a, b)
    rows = {r["figure"]: r for r in out["rows"]}
    assert rows["graphs.clip/ort/fp32.mean"]["ratio"] == pytest.approx(2.0)
    assert rows["graphs.clip/ort/fp32.fps"]["ratio"] == pytest.approx(0.5)
    assert rows["graphs.clip/ort/fp32.gflops"]["ratio"] == pytest.approx(0.5)
    assert rows["streams.throughput.fps"]["ratio"] == pytest.approx(0.5)
    assert rows["context.matmul_peak.peak_gflops"]["ratio"] == pytest.approx(1.5)
    assert "graphs.clip/ort/int8.mean" in out["only_b"] and not out["only_a"]
    assert "context.matmul_peak.int8_peak_gops" in out["only_b"]  # unavailable in A: listed, not a ratio
    text = rep.compare_markdown(out)
    assert "| graphs.clip/ort/fp32.mean | 2 | 4 | 2.000 |" in text and "only in B" in text


def test_compare_refuses_other_schema_majors_and_non_reports(tmp_path):
    a = sample_report()
    b = copy.deepcopy(a)
    b["schema"] = "edgevid.bench/2"
    with pytest.raises(DataError, match="different schemas"):
        rep.compare(a, b)
    b["schema"] = "edgevid.bundle/2"
    with pytest.raises(DataError, match="not an edgevid bench report schema"):
        rep.compare(a, b)
    (tmp_path / "x.json").write_text("[1, 2]")
    with pytest.raises(DataError, match="not a bench report"):
        rep.load_report(tmp_path / "x.json")
    with pytest.raises(DataError, match="cannot read"):
        rep.load_report(tmp_path / "missing.json")


def test_a_section_module_absent_or_failing_is_recorded_not_measured(monkeypatch):
    section, error = run.optional_section("no_such_module_here", "measure")
    assert error is None and "not part of this build" in section["not_measured"]

    class Failing:
        @staticmethod
        def measure(*args, **kwargs):
            raise SourceError("source ended after 3 frames", "warm-up needs 10", "use a longer source")

    monkeypatch.setattr(run, "optional_module", lambda name: (Failing, None))
    section, error = run.optional_section("stream", "measure")
    assert isinstance(error, SourceError) and section == {"not_measured": str(error), "error": "SourceError"}


def test_without_matplotlib_the_report_says_no_plot_was_written(tmp_path, monkeypatch):
    import edgevid._optional

    r = sample_report()
    monkeypatch.setattr(edgevid._optional, "available", lambda name: name != "matplotlib")
    assert run.write_plots(r, tmp_path) == [] and not list(tmp_path.iterdir())
    assert "matplotlib" in r["plots_not_written"]
    assert "none written: matplotlib is not installed" in rep.markdown(r)


def test_the_graph_plot_is_a_png_listing_what_it_drew(tmp_path):
    pytest.importorskip("matplotlib")
    r = sample_report()
    r["context"] = {"matmul_peak": {"peak_gflops": 100.0}}
    r["streams"] = {"not_measured": "this test draws the graphs only"}
    assert run.write_plots(r, tmp_path) == ["graphs.png"]
    assert (tmp_path / "graphs.png").read_bytes()[:4] == b"\x89PNG"


def test_streams_and_memory_read_as_tables_and_say_what_was_not_measured():
    from edgevid.bench.report import _memory_md, _streams_md

    run = {"fps": 100.0, "latency_ms": {"p50": 2.0, "p99": 9.0}, "dropped": 1, "fine_rate": 0.4, "gmacs_per_frame": 0.8}
    lines = _streams_md({"source": "s", "backend": "ort", "warmup_predictions": 8,
                         "throughput": {"pipelined": run, "sequential": dict(run, fps=80.0),
                                        "pipelined_over_sequential": 1.25},
                         "paced": {"not_measured": "a file source"}, "always_fine": {"not_measured": "no gate"},
                         "accuracy": {"not_measured": "no ground truth"}})
    text = "\n".join(lines)
    assert "| read as fast as possible, pipelined | 100 | 2 / 9 | 1 | 40% | 0.8 |" in text
    assert "not measured: a file source" in text and "not measured: no gate" in text
    assert "pipelined / sequential FPS: 1.25" in text and "accuracy: not measured: no ground truth" in text
    assert _memory_md({"not_measured": "no child"}) == ["not measured: no child"]
