"""The build around TensorRT (builder.py): unchanged engines are reused without TensorRT, a build without
TensorRT is a DependencyError that says where TensorRT comes from, and nothing is half-recorded. The TensorRT
build itself is tested on a device (test_trt.py)."""
from __future__ import annotations

import sys
from dataclasses import replace

import pytest

from edgevid.backends import trt as trt_backend
from edgevid.backends.engines import engine_info
from edgevid.bundle import NewArtifact, load_bundle
from edgevid.engine_build import builder
from edgevid.engine_build.plan import make_plan
from edgevid.errors import DependencyError, ManifestError
from tests.engine_build.conftest import TRT8, XAVIER


@pytest.fixture
def no_tensorrt(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # as on a machine without it, even where it is installed


def with_engines(bundle, precision):
    """The bundle with an engine entry for every engine of the plan, recorded as builder.py records it."""
    new = []
    for item in make_plan(bundle, precision, XAVIER, TRT8).items:
        info = engine_info(XAVIER, dla_core=item.dla_core, workspace_mib=item.workspace_mib,
                           source_sha256=item.source_sha256, **item.settings())
        new.append(NewArtifact(item.role, "engine", item.engine, lambda p: p.write_bytes(b"plan"),
                               precision=item.precision, info=info))
    bundle.add_artifacts(new)
    return load_bundle(bundle.root)


def test_unchanged_engines_are_reused_without_tensorrt(quantized, no_tensorrt):
    bundle = with_engines(quantized, "int8")
    report = builder.build(bundle, "int8", device=XAVIER, caps=TRT8)
    assert [(e["role"], e["precision"], e["action"]) for e in report["engines"]] == [
        ("backbone", "int8", "reused"), ("step", "fp32", "reused")]
    assert "never INT8" in report["kept"]["step"] and report["timing_cache"] == "timing.trt8.5.sm72.cache"
    record = load_bundle(bundle.root).meta["build"]["trt8.5.2.2.sm72"]
    assert record["roles"] == {"backbone": {"precision": "int8", "engine": "backbone.int8.trt8.5.sm72.engine"},
                               "step": {"precision": "fp32", "engine": "step.fp32.trt8.5.sm72.engine",
                                        "kept": report["kept"]["step"]}}


def test_an_engine_to_build_without_tensorrt_says_it_comes_from_jetpack(quantized, no_tensorrt):
    with pytest.raises(DependencyError, match="never installed from pip") as e:
        builder.build(quantized, "int8", device=XAVIER, caps=TRT8)
    assert "JetPack" in str(e.value)
    again = load_bundle(quantized.root)
    assert "build" not in again.meta and not again.graph("backbone").find("engine")


def test_the_device_is_read_from_tensorrt(quantized, no_tensorrt):
    with pytest.raises(DependencyError, match="JetPack"):
        builder.build(quantized, "fp16")
    with pytest.raises(DependencyError, match="JetPack"):
        builder.device_and_caps(None, None)  # through the backend: one place reads the device
    with pytest.raises(DependencyError):
        trt_backend.current_device()


def test_the_cli_exits_3_without_tensorrt(quantized, no_tensorrt, edgevid_cli, capsys):
    assert edgevid_cli(["build", str(quantized.root), "--precision", "fp16"]) == 3
    assert "TensorRT comes with JetPack" in capsys.readouterr().err


def test_a_failed_commit_records_nothing(quantized):
    plan = make_plan(quantized, "fp16", XAVIER, TRT8)
    item = plan.items[0]
    clash = builder.Outcome(replace(item, engine=quantized.graph("step").file), "built", "t", b"x")
    with pytest.raises(ManifestError):
        builder._commit(quantized, plan, [clash], None)
    assert "build" not in quantized.meta and "build" not in load_bundle(quantized.root).meta


def test_a_build_of_one_role_keeps_the_record_of_the_others(quantized, no_tensorrt):
    bundle = with_engines(quantized, "int8")
    builder.build(bundle, "int8", device=XAVIER, caps=TRT8)
    builder.build(load_bundle(bundle.root), "int8", device=XAVIER, caps=TRT8, roles=["backbone"])
    assert set(load_bundle(bundle.root).meta["build"]["trt8.5.2.2.sm72"]["roles"]) == {"backbone", "step"}


def test_the_report_prints_per_engine_what_was_done_and_why(quantized, no_tensorrt, capsys):
    from edgevid.commands.build import print_report

    report = builder.build(with_engines(quantized, "int8"), "int8", device=XAVIER, caps=TRT8)
    print_report(report)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "engines of %s (Xavier, TensorRT 8.5.2.2, SM 72), precision int8:" % quantized.root
    assert out[1].split()[:4] == ["backbone", "int8", "reused", "backbone.int8.trt8.5.sm72.engine"]
    assert "unchanged: backbone.int8.trt.onnx is what it was built from" in out[1]
    assert out[3].strip().startswith("note: the prernn rules keep it off int8")
