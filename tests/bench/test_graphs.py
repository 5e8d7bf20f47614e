"""Per-graph timing: real, ordered summaries; GFLOP/s from the bundle's gmacs; warm-up excluded and cycled inputs;
calibration feeds and every precision held timed; backends and precisions the bundle cannot run refused."""
from __future__ import annotations

import pytest

from edgevid.bench import graphs
from edgevid.bundle import load_bundle
from edgevid.errors import BuildError, ConfigError, DependencyError, ManifestError
from tests.helpers import bundles as fixture_bundles

pytest.importorskip("onnxruntime")


def bundle(name, tmp_path):
    return load_bundle(fixture_bundles.copy_bundle(name, tmp_path / name))


def test_every_role_is_timed_with_ordered_real_figures(tmp_path):
    b = bundle(fixture_bundles.LITEEVAL["mixed"], tmp_path)
    section = graphs.measure_graphs(b, backend="ort", runs=12, warmup=2,
                                   peak={"peak_gflops": 100.0, "int8_peak_gops": 400.0})
    assert [r["role"] for r in section["results"]] == list(b.rules.roles)
    for r in section["results"]:
        s = r["latency_ms"]
        assert s["n"] == 12 and r["warmup"] == 2
        assert 0 < s["min"] <= s["p50"] <= s["p90"] <= s["p99"] <= s["max"]
        assert s["min"] <= s["mean"] <= s["max"]
        assert s["fps"] == pytest.approx(1000.0 / s["mean"])
        assert r["gflops"] == pytest.approx(2.0 * b.graph(r["role"]).gmacs / (s["mean"] / 1000.0))
        assert r["peak_share"] == pytest.approx(r["gflops"] / 100.0)
        assert (r["backend"], r["precision"], r["vs_fp32"], r["peak"]) == ("ort", "fp32", 1.0, "peak_gflops")
    assert section["inputs"]["coarse_cnn"]["kind"].startswith("zeros")  # the fixture has no feeds, and says so
    assert "not_measured" in section["torch"]


def test_rates_come_from_gmacs_and_say_why_when_they_cannot():
    assert graphs.rates(0.5, {"mean": 10.0}, 200.0) == {"gflops": 100.0, "peak_share": 0.5}
    none = graphs.rates(None, {"mean": 10.0}, 200.0)
    assert none["gflops"] is None and "gmacs" in none["why"]
    assert graphs.rates(0.5, {"mean": None}, 200.0)["gflops"] is None
    above = graphs.rates(5.0, {"mean": 1.0}, 100.0)  # 10 000 GFLOP/s on a 100 GFLOP/s machine
    assert above["gflops"] == pytest.approx(10000.0) and "peak" in above["why"]


class Counting:
    """A session that records the feed of every call."""

    def __init__(self):
        self.seen = []

    def infer(self, feed):
        self.seen.append(feed["k"])


def test_warmup_is_not_timed_and_inputs_go_round_when_fewer():
    session = Counting()
    feeds = [{"k": 0}, {"k": 1}]
    seconds = graphs.time_session(session, feeds, runs=3, warmup=5)  # warm-up alone outnumbers the inputs
    assert len(seconds) == 3 and all(s >= 0 for s in seconds)
    assert session.seen == [0, 1, 0, 1, 0, 1, 0, 1]


def test_bad_counts_are_refused(tmp_path):
    b = bundle(fixture_bundles.CLIP, tmp_path)
    for runs, warmup in ((0, 1), (5, -1)):
        with pytest.raises(ConfigError):
            graphs.measure_graphs(b, backend="ort", runs=runs, warmup=warmup)


def test_a_precision_the_bundle_does_not_hold_is_refused(tmp_path):
    b = bundle(fixture_bundles.LITEEVAL["fine"], tmp_path)
    with pytest.raises(ManifestError, match="no fp16 graph"):
        graphs.measure_graphs(b, backend="ort", precision="fp16", runs=2, warmup=0)


def test_an_opt_in_precision_not_made_runs_fp32_and_says_so(tmp_path):
    b = bundle(fixture_bundles.CLIP, tmp_path)
    section = graphs.measure_graphs(b, backend="ort", precision="int8", runs=2, warmup=0)
    assert [r["precision"] for r in section["results"]] == ["fp32"]
    assert "opt-in" in section["kept_fp32"]["clip"]


def test_tensorrt_without_its_packages_is_a_dependency_error(tmp_path):
    from edgevid._optional import available

    if available("tensorrt"):
        pytest.skip("TensorRT installed here")
    b = bundle(fixture_bundles.CLIP, tmp_path)
    with pytest.raises(DependencyError):
        graphs.measure_graphs(b, backend="trt", runs=2, warmup=0)
    chosen, skipped = graphs.backends_to_time(b, "auto")
    assert chosen == ["ort"] and "not installed" in skipped["trt"]


def test_a_backend_without_engines_for_the_bundle_is_the_registrys_build_error(tmp_path, monkeypatch):
    # TensorRT installed (resolve_backend passes) but the bundle has no engines: what edgevid run says too
    b = bundle(fixture_bundles.CLIP, tmp_path)
    monkeypatch.setattr(graphs.registry, "resolve_backend", lambda name, *a: name)
    with pytest.raises(BuildError, match="no engine") as e:
        graphs.backends_to_time(b, "trt")
    assert "edgevid build" in str(e.value)


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    """A LiteEval fixture with recorded feeds and CPU-form INT8 CNNs (onnx needed to quantize)."""
    pytest.importorskip("onnx")
    pytest.importorskip("cv2")
    from edgevid.quant import calibrate
    from edgevid.quant.cpu_int8 import quantize_cpu

    root = fixture_bundles.copy_bundle(fixture_bundles.LITEEVAL["mixed"], tmp_path_factory.mktemp("cal") / "b")
    calibrate(root, {"name": "t", "streams": ["synthetic:seed=3,segments=3,frames=16,fps=10"], "max_frames": 40,
                     "min_samples": 4})
    b = load_bundle(root)
    b.add_artifacts(quantize_cpu(b, "coarse_cnn") + quantize_cpu(b, "fine_cnn"))
    return load_bundle(root)


def test_recorded_feeds_and_every_precision_held_are_timed(calibrated):
    section = graphs.measure_graphs(calibrated, backend="ort", runs=4, warmup=1,
                                    peak={"peak_gflops": 100.0, "int8_peak_gops": 400.0})
    assert section["inputs"]["coarse_cnn"]["kind"] == "calibration feeds"
    assert section["inputs"]["coarse_cnn"]["samples"] >= 4
    coarse = {r["precision"]: r for r in section["results"] if r["role"] == "coarse_cnn"}
    assert sorted(coarse) == ["fp32", "int8"]
    assert coarse["int8"]["artifact"].endswith(".onnx") and coarse["int8"]["artifact"] != coarse["fp32"]["artifact"]
    assert coarse["int8"]["peak"] == "int8_peak_gops"  # integer kernels against the integer peak
    assert coarse["int8"]["peak_share"] == pytest.approx(coarse["int8"]["gflops"] / 400.0)
    assert coarse["int8"]["vs_fp32"] == pytest.approx(coarse["fp32"]["latency_ms"]["mean"]
                                                      / coarse["int8"]["latency_ms"]["mean"])
    only = graphs.measure_graphs(calibrated, backend="ort", precision="int8", runs=2, warmup=0)
    ran = {r["role"]: r["precision"] for r in only["results"]}
    assert ran == {"coarse_cnn": "int8", "fine_cnn": "int8", "coarse_step": "fp32", "fine_step": "fp32"}
    assert set(only["kept_fp32"]) == {"coarse_step", "fine_step"}  # the steps never run INT8, and it says why
