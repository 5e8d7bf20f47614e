"""FP16: graphs converted with float32 I/O that the runtime streams, agreement with FP32 on the calibration feeds,
activation ranges against FP16 limits, gate saturation of recurrent cells, refusals. Tiny fixtures, no torch."""
from __future__ import annotations

import json

import numpy as np
import pytest

from edgevid.bundle import load_bundle
from edgevid.errors import CalibrationError, ConfigError
from edgevid.families.base import PrecisionRule
from tests.helpers import bundles as fixture_bundles

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxruntime.transformers.float16")
pytest.importorskip("cv2")

from edgevid.quant import calibrate, load_feeds  # noqa: E402
from edgevid.quant.fp16 import convert_fp16  # noqa: E402
from edgevid.quant.ranges import FP16_MAX, fp16_risks, gate_saturation, tensor_ranges  # noqa: E402

RECIPE = {"name": "t", "streams": ["synthetic:seed=3,segments=3,frames=16,fps=10"], "max_frames": 40, "min_samples": 2}


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    """Calibrated copies of the tiny LiteEval and PreRNN bundles (one calibration per module: it is the slow part)."""
    root = tmp_path_factory.mktemp("fp16")
    out = {}
    for name in (fixture_bundles.LITEEVAL["mixed"], fixture_bundles.PRERNN["lstm"]):
        out[name] = fixture_bundles.copy_bundle(name, root / name)
        calibrate(out[name], RECIPE)
    return out


def test_every_liteeval_role_converts_keeps_float32_io_agrees_and_streams(calibrated):
    root = calibrated[fixture_bundles.LITEEVAL["mixed"]]
    bundle = load_bundle(root)
    new, reports = [], {}
    for role in bundle.graphs:
        items, reports[role] = convert_fp16(bundle, role)
        new += items
    json.dumps(reports, allow_nan=False)  # the report is strict JSON as it is
    bundle.add_artifacts(new)
    bundle = load_bundle(root)
    for role, report in reports.items():
        art = bundle.graph(role).find("onnx", "fp16")[0]
        assert art.file == role + ".fp16.onnx" and art.info["conversion"]["keep_io_types"] is True
        session = ort.InferenceSession(str(bundle.path(art)), providers=["CPUExecutionProvider"])
        assert {i.type for i in session.get_inputs()} | {o.type for o in session.get_outputs()} == {"tensor(float)"}
        assert any(t.data_type == onnx.TensorProto.FLOAT16
                   for t in onnx.load(str(bundle.path(art))).graph.initializer)  # the weights really are FP16
        for output, row in report["agreement"].items():
            assert row["cosine_min"] > 0.999 and row["nonfinite"] == 0, (role, output, row)
        assert report["samples"] == len(load_feeds(bundle, role)["_stream"])
    assert reports["coarse_step"]["agreement"]["logits_sync"]["top1"] == 1.0
    assert {g["op"] for g in reports["coarse_step"]["gates"]} == {"Sigmoid", "Tanh"}

    from edgevid.runtime import StreamRuntime
    from edgevid.runtime.source import open_source

    with StreamRuntime(bundle, precision="fp16", pipelined=False) as runtime, \
            open_source("synthetic:seed=5,segments=1,frames=12,fps=10") as source:
        preds = list(runtime.run(source))
    sessions = runtime.stats.to_dict()["sessions"]
    assert preds and sessions["fine_step"] == {"backend": "ort", "precision": "fp16", "artifact": "fine_step.fp16.onnx"}


def test_prernn_step_gates_saturate_when_pre_activations_are_pushed_high(calibrated):
    bundle = load_bundle(calibrated[fixture_bundles.PRERNN["lstm"]])
    feeds = load_feeds(bundle, "step")
    path = bundle.graph_path("step")
    calm = gate_saturation(path, feeds, limit=8)
    pushed = gate_saturation(path, {k: v * 200.0 for k, v in feeds.items()}, limit=8)
    sigmoids = [g for g in pushed if g["op"] == "Sigmoid"]
    assert len(sigmoids) == 3 and {g["tensor"] for g in calm} == {g["tensor"] for g in pushed}
    assert all(g["fp16_at_one"] + g["fp16_at_zero"] > 0.2 for g in sigmoids)
    assert max(g["fp16_at_one"] for g in calm if g["op"] == "Sigmoid") < min(g["fp16_at_one"] for g in sigmoids)
    # exact: FP16 rounds sigmoid(x) to 1 from x ≈ 8.3 on, FP32 only from x ≈ 16.6
    worst = pushed[0]
    assert worst["fp16_at_one"] >= worst["fp32_at_one"] and worst["x_max"] > 8.3


def test_range_report_flags_a_tensor_that_overflows_fp16(tmp_path):
    from onnx import TensorProto, helper

    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 4], (np.eye(4) * 1e6).ravel().tolist())
    small = helper.make_tensor("s", TensorProto.FLOAT, [], [1e-6])
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["big"]), helper.make_node("Relu", ["x"], ["r"]),
         helper.make_node("Mul", ["r", "s"], ["tiny"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("big", TensorProto.FLOAT, [1, 4]),
         helper.make_tensor_value_info("tiny", TensorProto.FLOAT, [1, 4])], [w, small])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    feeds = {"x": np.linspace(0.1, 1.0, 12, dtype=np.float32).reshape(3, 4), "_stream": np.zeros(3, np.int32)}
    ranges = tensor_ranges(path, feeds)
    assert set(ranges) == {"x", "big", "r", "tiny"}  # weights are not activations
    assert ranges["big"]["absmax"] == pytest.approx(1e6) and ranges["big"]["inf_count"] == 12
    risks = fp16_risks(ranges)
    assert risks[0]["tensor"] == "big" and risks[0]["risk"] == "overflow" and risks[0]["absmax"] > FP16_MAX
    assert {r["tensor"]: r["risk"] for r in risks}["tiny"] == "underflow"
    assert {r["tensor"]: r["risk"] for r in risks}["x"] == "ok"


def test_refusals_without_feeds_and_for_roles_kept_off_fp16(tmp_path, monkeypatch):
    root = fixture_bundles.copy_bundle(fixture_bundles.CLIP, tmp_path / "clip")
    with pytest.raises(CalibrationError, match="edgevid calibrate"):
        convert_fp16(root, "clip")
    bundle = load_bundle(root)
    rule = PrecisionRule(("fp32",), "fp32", "kept FP32 for the test")
    monkeypatch.setattr(type(bundle.rules), "precision_rule", lambda self, role: rule)
    with pytest.raises(ConfigError, match="kept FP32 for the test"):
        convert_fp16(bundle, "clip")
    calibrate(root, dict(RECIPE, max_frames=None))
    new, report = convert_fp16(load_bundle(root), "clip", force=True, limit=4)
    assert report["forced"] and new[0].info["forced"] == "kept FP32 for the test" and report["samples"] == 4


def test_emulation_rounds_between_nodes_where_ort_cpu_does_not():
    """ONNX Runtime's CPU provider runs the converted graph's nodes in FP32; the emulation rounds every tensor."""
    from onnx import TensorProto, helper
    from edgevid.quant.fp16 import _session, emulate_fp16, to_fp16

    c = helper.make_tensor("c", TensorProto.FLOAT, [1], [0.0004])  # below half an FP16 step at 1.0
    graph = helper.make_graph([helper.make_node("Add", ["x", "c"], ["a"]), helper.make_node("Add", ["a", "c"], ["y"])],
                              "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])], [c])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    feed = {"x": np.ones(1, np.float32)}
    emulated = _session(emulate_fp16(model).SerializeToString(), optimize=False).run(None, feed)[0]
    assert emulated[0] == 1.0  # each add rounds back to 1.0 in FP16
    converted = _session(to_fp16(model)[0].SerializeToString()).run(None, feed)[0]
    assert converted[0] != 1.0  # FP32 in between: what a CPU check alone would miss


def test_features_below_fp16_range_break_the_emulated_step_not_the_cpu_run(calibrated):
    """The demo's coarse CNN gives features of ~1e-8: FP16 flushes them to 0 and the step's L2 norm divides 0 by
    0. The emulation reports it (NaN counted, cosine 0, strict JSON)."""
    import onnx as onnx_
    from edgevid.quant.fp16 import agreement, emulate_fp16

    bundle = load_bundle(calibrated[fixture_bundles.LITEEVAL["mixed"]])
    feeds = dict(load_feeds(bundle, "coarse_step"))
    feeds["feat_c"] = feeds["feat_c"] * 1e-9
    fp32 = bundle.graph_path("coarse_step").read_bytes()
    emulated = agreement(fp32, emulate_fp16(onnx_.load_from_string(fp32)).SerializeToString(), feeds, limit=6,
                         optimize=False)
    assert emulated["v_c"]["cosine_min"] < 0.5 and emulated["v_c"]["nonfinite"] > 0
    json.dumps(emulated, allow_nan=False)
