"""One rule for the precision of each role, built and run (backends.registry.role_precision): what ``edgevid
build`` makes by default is what a run on TensorRT without a precision opens, and a build at a precision is what
a run at it opens, also for roles the family's rules or quantize keep FP32. No TensorRT needed: the device is
given, the engines are entered as the builder enters them, and the registry's selection is the real code."""
from __future__ import annotations

import sys
import types

import pytest

from edgevid.backends import open_role, registry
from edgevid.backends.engines import engine_info
from edgevid.bundle import NewArtifact, load_bundle
from edgevid.engine_build.plan import make_plan
from edgevid.errors import BuildError
from tests.engine_build.conftest import TRT8, XAVIER, add_quantized


@pytest.fixture
def gpu_here(monkeypatch):
    """TensorRT and pycuda "installed" (empty modules: nothing here may use them) and this machine a Xavier."""
    for name in ("tensorrt", "pycuda", "pycuda.driver"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setattr(registry, "this_device", lambda name: XAVIER)


def built(bundle, precision):
    """The bundle with the engines of ``edgevid build --precision precision``, recorded as builder.py does."""
    plan = make_plan(bundle, precision, XAVIER, TRT8)
    new = []
    for item in plan.items:
        info = engine_info(XAVIER, dla_core=item.dla_core, workspace_mib=item.workspace_mib,
                           source_sha256=item.source_sha256, **item.settings())
        new.append(NewArtifact(item.role, "engine", item.engine, lambda p: p.write_bytes(b"plan"),
                               precision=item.precision, info=info))
    bundle.add_artifacts(new)
    return load_bundle(bundle.root), {item.role: item for item in plan.items}


@pytest.fixture
def measured(liteeval_bundle):
    """LiteEval with FP16 graphs of the coarse CNN, the fine CNN kept FP32 by quantize's measurement."""
    return add_quantized(liteeval_bundle, "fp16", ["coarse_cnn"], kept={"fine_cnn": "top-1 agreement 0.97 < 0.99"})


def test_the_default_build_is_what_a_default_run_on_tensorrt_opens(measured, gpu_here):
    assert registry.role_precision(measured, "coarse_cnn") == ("fp16", None)
    assert registry.role_precision(measured, "fine_cnn", "default") == (
        "fp32", "edgevid quantize kept it FP32: top-1 agreement 0.97 < 0.99")  # the rule says fp16, quantize not
    assert registry.role_precision(measured, "fine_step", None)[0] == "fp32"  # the rule's default
    bundle, items = built(measured, "default")
    assert {r: i.precision for r, i in items.items()} == {"coarse_cnn": "fp16", "fine_cnn": "fp32",
                                                          "coarse_step": "fp32", "fine_step": "fp32"}
    assert registry.resolve_backend("auto", bundle) == "trt"  # every role has the engine a default run wants
    assert registry.precision_plan(bundle, None, kind="engine") == {r: i.precision for r, i in items.items()}
    assert registry.precision_plan(bundle, None) == dict.fromkeys(items, "fp32")  # ONNX Runtime's default
    for role, item in items.items():
        session = open_role(bundle, role, "trt")  # precision None, as `edgevid run --backend trt` passes it
        assert session.path.name == item.engine and session.precision == item.precision
        assert session.precision == registry.role_precision(bundle, role)[0]


def test_a_build_at_a_precision_is_what_a_run_at_it_opens(measured, gpu_here):
    bundle, items = built(measured, "fp16")
    plan = registry.precision_plan(bundle, "fp16", kind="engine")
    assert plan == {r: i.precision for r, i in items.items()}
    assert plan["fine_cnn"] == "fp32" and plan["coarse_step"] == "fp16"  # kept by quantize; the rules allow it
    for role, item in items.items():
        assert open_role(bundle, role, "trt", plan[role]).path.name == item.engine


def test_an_opt_in_precision_quantize_did_not_make_is_fp32_built_and_run(clip_bundle):
    bundle, items = built(clip_bundle, "int8")
    assert items["clip"].precision == "fp32" and "opt-in" in items["clip"].notes[0]
    assert registry.precision_plan(bundle, "int8", kind="engine") == {"clip": "fp32"}
    assert registry.precision_plan(bundle, "int8") == {"clip": "fp32"}  # on ONNX Runtime the same


def test_a_default_run_on_tensorrt_without_the_default_engines_says_to_build(measured):
    with pytest.raises(BuildError, match="has no engine for coarse_cnn at fp16") as e:
        registry.precision_plan(measured, None, kind="engine")  # fine_cnn is fp32 (kept): not asked for at fp16
    assert e.value.fix == "build them on the device: edgevid build %s" % measured.root
