"""What edgevid build makes per role (plan.py): precision from the family's rules and quantize's record, the
source graph and builder settings each TensorRT needs, DLA refusals, reuse or rebuild. No TensorRT needed."""
from __future__ import annotations

import pytest

from edgevid.backends.engines import Device, engine_info
from edgevid.bundle import NewArtifact, load_bundle
from edgevid.engine_build.plan import Caps, decide, make_plan
from edgevid.errors import BuildError, ConfigError
from tests.engine_build.conftest import DESKTOP, ORIN, TRT8, TRT10, TRT11, XAVIER


def by_role(plan):
    return {item.role: item for item in plan.items}


def test_default_is_the_familys_tensorrt_default_per_role(liteeval_bundle):
    items = by_role(make_plan(liteeval_bundle, "default", XAVIER, TRT8))
    assert items["coarse_cnn"].precision == "fp16" and items["coarse_cnn"].flags == ("FP16",)
    assert items["coarse_cnn"].source == "coarse_cnn.onnx" and not items["coarse_cnn"].strongly_typed
    assert items["coarse_cnn"].engine == "coarse_cnn.fp16.trt8.5.sm72.engine"
    assert items["fine_step"].precision == "fp32" and items["fine_step"].flags == ()


def test_int8_from_the_qdq_graph_and_roles_the_rules_keep_stay_fp32(quantized):
    plan = make_plan(quantized, "int8", XAVIER, TRT8)
    items = by_role(plan)
    backbone = items["backbone"]
    assert (backbone.precision, backbone.source, backbone.source_kind) == ("int8", "backbone.int8.trt.onnx", "qdq")
    assert backbone.flags == ("INT8", "FP16")  # 8.x is weakly typed: layers outside Q/DQ may then run FP16
    assert backbone.source_sha256 == quantized.graph("backbone").find("onnx", "int8")[0].sha256
    assert items["step"].precision == "fp32" and items["step"].engine == "step.fp32.trt8.5.sm72.engine"
    assert "never INT8" in plan.kept["step"] and "never INT8" in items["step"].notes[0]


def test_tensorrt_11_builds_strongly_typed_from_the_reduced_graphs(quantized, prernn_bundle):
    fp16 = by_role(make_plan(quantized, "fp16", DESKTOP, TRT11))["backbone"]
    assert (fp16.source, fp16.flags, fp16.strongly_typed) == ("backbone.fp16.onnx", (), True)
    int8 = by_role(make_plan(quantized, "int8", DESKTOP, TRT11))["backbone"]
    assert (int8.source, int8.flags, int8.strongly_typed) == ("backbone.int8.trt.onnx", (), True)
    # 10.x still has the FP16 flag: FP16 from the FP32 graph, weakly typed
    ten = by_role(make_plan(quantized, "fp16", ORIN, TRT10))["backbone"]
    assert (ten.source, ten.flags, ten.strongly_typed) == ("backbone.onnx", ("FP16",), False)


def test_a_missing_reduced_graph_says_what_to_run(prernn_bundle):
    with pytest.raises(BuildError, match="no FP16 ONNX graph.*strongly typed.*edgevid quantize .* --precision fp16"):
        make_plan(prernn_bundle, "fp16", DESKTOP, TRT11)
    with pytest.raises(BuildError, match="no Q/DQ INT8 graph.*edgevid calibrate"):
        make_plan(prernn_bundle, "int8", XAVIER, TRT8)


def test_implicit_int8_from_the_cache_where_calibrators_exist(quantized):
    item = by_role(make_plan(quantized, "int8", XAVIER, TRT8, calibration="cache"))["backbone"]
    assert (item.source, item.calibration, item.calibration_file) == ("backbone.onnx", "cache", "backbone.calib.cache")
    assert item.flags == ("INT8", "FP16")
    with pytest.raises(ConfigError, match="no.*TensorRT 11 builds INT8 only from Q/DQ.*--calibration qdq"):
        make_plan(quantized, "int8", DESKTOP, TRT11, calibration="cache")
    with pytest.raises(BuildError, match="no calibration feeds.*edgevid calibrate"):
        make_plan(quantized, "int8", XAVIER, TRT8, calibration="feeds")


def test_a_role_quantize_kept_fp32_is_built_fp32_with_its_reason(prernn_bundle):
    from tests.engine_build.conftest import add_quantized

    b = add_quantized(prernn_bundle, "fp16", ["step"], kept={"backbone": "measured: cosine 0.9"})
    plan = make_plan(b, "fp16", XAVIER, TRT8)
    assert by_role(plan)["backbone"].precision == "fp32"
    assert plan.kept["backbone"] == "edgevid quantize kept it FP32: measured: cosine 0.9"
    assert by_role(plan)["step"].precision == "fp16"


def test_slowfast_int8_is_opt_in(clip_bundle):
    plan = make_plan(clip_bundle, "int8", XAVIER, TRT8)
    assert by_role(plan)["clip"].precision == "fp32" and "opt-in" in plan.kept["clip"]


def test_dla_refusals(liteeval_bundle, clip_bundle):
    with pytest.raises(ConfigError, match="this GPU .*SM 90.* has no DLA.*Leave out --dla"):
        make_plan(liteeval_bundle, "fp16", DESKTOP, TRT11, dla=0)
    with pytest.raises(ConfigError, match="DLA core 2 does not exist.*has 2"):
        make_plan(liteeval_bundle, "fp16", XAVIER, TRT8, dla=2)
    with pytest.raises(ConfigError, match="role clip cannot run on the DLA.*3D convolutions"):
        make_plan(clip_bundle, "fp16", XAVIER, TRT8, dla=0)


def test_dla_with_gpu_fallback_and_fp32_on_the_gpu(liteeval_bundle):
    items = by_role(make_plan(liteeval_bundle, "default", XAVIER, TRT8, dla=1, workspace_mib=512))
    cnn = items["coarse_cnn"]
    assert cnn.dla_core == 1 and cnn.flags == ("FP16", "GPU_FALLBACK") and cnn.engine.endswith(".dla1.engine")
    assert cnn.workspace_mib == 512
    step = items["coarse_step"]
    assert step.dla_core is None and "DLA has no FP32" in step.notes[0]


def test_dla_with_qdq_on_tensorrt_8_says_it_falls_back(quantized):
    item = by_role(make_plan(quantized, "int8", XAVIER, TRT8, dla=0))["backbone"]
    assert any("--calibration cache" in note for note in item.notes)
    assert not by_role(make_plan(quantized, "int8", ORIN, TRT10, dla=0))["backbone"].notes


def test_bad_options(liteeval_bundle):
    with pytest.raises(ConfigError, match="unknown precision"):
        make_plan(liteeval_bundle, "int4", XAVIER, TRT8)
    with pytest.raises(ConfigError, match="workspace"):
        make_plan(liteeval_bundle, "fp16", XAVIER, TRT8, workspace_mib=0)
    from edgevid.errors import ManifestError
    with pytest.raises(ManifestError, match="no graph with role 'clip'"):
        make_plan(liteeval_bundle, "fp16", XAVIER, TRT8, roles=["clip"])


def test_best_candidates_and_why_others_are_not(quantized):
    plan = make_plan(quantized, "best", XAVIER, TRT8)
    got = sorted((i.role, i.precision) for i in plan.items)
    assert got == [("backbone", "fp16"), ("backbone", "fp32"), ("backbone", "int8"), ("step", "fp16"), ("step", "fp32")]
    assert "never INT8" in plan.excluded["step"]["int8"]
    on_11 = make_plan(quantized, "best", DESKTOP, TRT11, calibration="cache")
    assert ("backbone", "int8") not in {(i.role, i.precision) for i in on_11.items}
    assert "needs an implicit INT8 calibrator" in on_11.excluded["backbone"]["int8"]


def _add_engine(bundle, item, device, **changes):
    info = engine_info(device, dla_core=item.dla_core, workspace_mib=item.workspace_mib,
                       source_sha256=item.source_sha256, **item.settings())
    info.update(changes)
    bundle.add_artifacts([NewArtifact(item.role, "engine", item.engine, lambda p: p.write_bytes(b"plan"),
                                      precision=item.precision, info=info)])
    return load_bundle(bundle.root)


def test_reuse_only_what_this_tensorrt_built_from_this_onnx_with_these_settings(prernn_bundle):
    item = by_role(make_plan(prernn_bundle, "fp16", XAVIER, TRT8))["backbone"]
    assert decide(prernn_bundle, item, XAVIER) == (None, "no engine yet")
    bundle = _add_engine(prernn_bundle, item, XAVIER)
    keep, why = decide(bundle, item, XAVIER)
    assert keep is not None and keep.file == item.engine and why.startswith("unchanged")
    assert decide(bundle, item, XAVIER, force=True)[0] is None
    patch = Device("8.5.3.1", "72", dla_cores=2)  # same file name (trt8.5), another TensorRT: rebuilt
    keep, why = decide(bundle, item, patch)
    assert keep is None and "TensorRT 8.5.2.2" in why
    stale = _add_engine(bundle, item, XAVIER, source_sha256="0" * 64)
    keep, why = decide(stale, item, XAVIER)
    assert keep is None and "backbone.onnx changed" in why
    other = _add_engine(bundle, item, XAVIER, workspace_mib=64)
    assert decide(other, item, XAVIER) == (None, "rebuild: built with other settings")


def test_assumed_caps_of_releases():
    assert Caps.assumed("8.5.2.2") == Caps(True, True, False, True)
    assert Caps.assumed("10.3.0") == Caps(True, True, True, False)
    assert Caps.assumed("11.4.0.106") == Caps(False, False, True, False)


def test_best_builds_no_candidate_the_report_would_refuse(prernn_bundle):
    plan = make_plan(prernn_bundle, "best", XAVIER, TRT8)
    assert [(i.role, i.precision) for i in plan.items] == [("backbone", "fp32"), ("step", "fp32")]
    assert plan.excluded["backbone"] == {
        "int8": "edgevid quantize --precision int8 has not made it for this role",
        "fp16": "edgevid quantize --precision fp16 has not made it for this role"}
