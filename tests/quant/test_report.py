"""The precision report: per role on the FP32 feeds and end to end against FP32, with the issue's targets."""
from __future__ import annotations

import shutil

import pytest

from edgevid.bundle import load_bundle
from tests.helpers import bundles as fixture_bundles

pytest.importorskip("onnxruntime")
pytest.importorskip("cv2")

from edgevid.quant.report import compare, markdown  # noqa: E402

STREAM = "synthetic:seed=5,segments=3,frames=16,fps=10"


def with_artifact(tmp_path, graph_from, role, precision, info):
    root = tmp_path / "b"
    shutil.copytree(str(fixture_bundles.FIXTURES / fixture_bundles.LITEEVAL["mixed"]), str(root))
    data = (fixture_bundles.FIXTURES / graph_from / (role + ".onnx")).read_bytes()
    load_bundle(root).add_artifact(role, "onnx", "%s.%s.onnx" % (role, precision), lambda p: p.write_bytes(data),
                                   precision=precision, info=info)
    return load_bundle(root)


def test_an_identical_graph_meets_every_target(tmp_path):
    bundle = with_artifact(tmp_path, fixture_bundles.LITEEVAL["mixed"], "fine_cnn", "int8",
                           {"target": "cpu", "quantization": {"method": "none: the fp32 bytes"}})
    report = compare(bundle, {"int8": {"fine_cnn": "int8"}}, [STREAM])
    entry = report["plans"]["int8"]
    assert entry["stream"]["top1_agreement"] == 1.0 and entry["stream"]["gate_agreement"] == 1.0
    assert entry["roles"]["fine_cnn"]["outputs"]["feat"]["min_cosine"] > 0.999999
    assert entry["roles"]["fine_cnn"]["calls"] == report["fp32"]["fine_rate"] * report["fp32"]["frames"]
    assert all(t["ok"] for t in entry["targets"].values()) and "all met" in markdown(report)
    assert entry["stream"]["sessions"]["fine_cnn"]["precision"] == "int8"
    assert entry["stream"]["sessions"]["coarse_step"]["precision"] == "fp32"


def test_a_graph_that_changes_the_gate_misses_the_targets_and_says_so(tmp_path):
    # the coarse_step of the bundle whose gate always skips, as if it were this bundle's fp16 step
    bundle = with_artifact(tmp_path, fixture_bundles.LITEEVAL["coarse"], "coarse_step", "fp16", {})
    report = compare(bundle, {"fp16": {"coarse_step": "fp16"}}, [STREAM])
    entry = report["plans"]["fp16"]
    assert entry["stream"]["gate_agreement"] < 1.0 and entry["stream"]["fine_rate"] == 0.0
    assert entry["roles"]["coarse_step"]["outputs"]["gate_logits"]["top1_agreement"] < 1.0
    agreement = entry["targets"]["top1_agreement"]
    assert agreement["measured"] == entry["stream"]["top1_agreement"] and agreement["target"] == 0.995
    assert agreement["ok"] is (agreement["measured"] >= 0.995)
    if not agreement["ok"]:
        assert "missed: top1_agreement" in markdown(report)
