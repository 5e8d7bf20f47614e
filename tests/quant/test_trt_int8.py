"""TensorRT INT8: the Q/DQ graph is TensorRT's form (checked), runs on ONNX Runtime and agrees with FP32; the
native calibration cache round-trips; sensitivity; refusals. Tiny fixtures, no torch."""
from __future__ import annotations

import numpy as np
import pytest

from edgevid.bundle import load_bundle
from edgevid.errors import CalibrationError, ConfigError, ExportError
from tests.helpers import bundles as fixture_bundles

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("cv2")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from edgevid.backends import open_role  # noqa: E402
from edgevid.quant import calibrate  # noqa: E402
from edgevid.quant import trt_int8 as trt  # noqa: E402
from edgevid.quant.activations import Activations, model_ranges  # noqa: E402

RECIPE = {"name": "t", "streams": ["synthetic:seed=3,segments=3,frames=16,fps=10"], "max_frames": 40,
          "min_samples": 4}


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    root = fixture_bundles.copy_bundle(fixture_bundles.LITEEVAL["mixed"], tmp_path_factory.mktemp("b") / "b")
    calibrate(root, RECIPE)
    bundle = load_bundle(root)
    bundle.add_artifacts(trt.quantize_trt(bundle, "fine_cnn"))
    return load_bundle(root)


def _cos(a, b):
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_qdq_graph_is_tensorrt_form_and_agrees_with_fp32(calibrated):
    art = calibrated.graph("fine_cnn").find("onnx", "int8")[0]
    assert art.file == "fine_cnn.int8.trt.onnx" and art.info["target"] == "trt"
    q = art.info["quantization"]
    assert q["per_channel"] and q["symmetric"] and q["method"] == "entropy" and q["excluded"] == {}
    assert q["calibration"]["file"] == "calibration/fine_cnn.npz" and len(q["calibration"]["data_sha256"]) == 64
    model = onnx.load(str(calibrated.path(art)))
    counts = trt.check_trt_qdq(model)
    assert counts["weights_per_channel"] == 2 and counts["activations_per_tensor"] == 2
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type in trt.QDQ_OPS:
            zp = inits[node.input[2]]
            assert zp.dtype == np.int8 and not zp.any()
        if node.op_type == "DequantizeLinear":  # only Conv/Gemm inputs
            assert all(n.op_type in ("Conv", "Gemm") for n in model.graph.node if node.output[0] in n.input)
    # ONNX Runtime never takes the TensorRT form for its own int8 graph; asked for that target, it runs it
    # unfused, and the outputs agree with FP32 on every feed
    from edgevid.errors import ManifestError
    from edgevid.quant import load_feeds
    with pytest.raises(ManifestError, match="for trt only.*--target cpu"):
        open_role(calibrated, "fine_cnn", backend="ort", precision="int8")
    feeds = load_feeds(calibrated, "fine_cnn")
    fp32 = ort.InferenceSession(str(calibrated.root / calibrated.graph("fine_cnn").file))
    session = open_role(calibrated, "fine_cnn", backend="ort", precision="int8", target="trt", optimize="basic")
    session.activate()
    try:
        assert session.path.name == "fine_cnn.int8.trt.onnx"
        for k in range(len(feeds["frame"])):
            feed = {"frame": feeds["frame"][k:k + 1]}
            assert _cos(fp32.run(None, feed)[0], next(iter(session.infer(feed).values()))) > 0.99
    finally:
        session.deactivate()


def test_cache_format_round_trips_with_known_scales(calibrated):
    assert trt.scale_hex(1.0) == "3f800000" and trt.parse_cache("TRT-8502-x\na: 3f800000")[1]["a"] == 1.0
    # the facts file's example: TensorRT applied 3c010a14 as 0.00787594 (a rounded print of the float32)
    decoded = trt.parse_cache("TRT-101600-EntropyCalibration2\nt: 3c010a14")[1]["t"]
    assert round(decoded, 8) == 0.00787594 and trt.scale_hex(decoded) == "3c010a14"
    assert trt.trt_header("8.5.2", "entropy") == "TRT-8502-EntropyCalibration2"
    assert trt.trt_header("8.6.1", "minmax") == "TRT-8601-MinMaxCalibration"
    assert trt.trt_header("10.3.0", "percentile") == "TRT-100300-EntropyCalibration2"
    header, scales = trt.parse_cache("TRT-8600-EntropyCalibration2\nimages: 3c00f9f4\n/m.0/act/Mul_output_0: 3e6c9314\n")
    assert header == "TRT-8600-EntropyCalibration2" and abs(scales["images"] * 127 - 0.99976) < 1e-4
    art = calibrated.graph("fine_cnn").find("calibration_cache")[0]
    assert art.file == "fine_cnn.calib.cache" and art.info["trt_header"] == "TRT-8502-EntropyCalibration2"
    text = calibrated.path(art).read_text()
    header, scales = trt.parse_cache(text)
    assert header == art.info["trt_header"] and len(scales) == art.info["tensors"]
    assert {"frame", "/conv/Conv_output_0", "feat"} <= set(scales)  # keyed by the FP32 graph's ONNX names
    # the scales are the Q/DQ graph's: the Conv's input scale equals the cache's frame scale
    model = onnx.load(str(calibrated.root / "fine_cnn.int8.trt.onnx"))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    q = next(n for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == "frame")
    assert np.float32(scales["frame"]) == pytest.approx(float(inits[q.input[1]]), rel=1e-6)
    assert all(s > 0 for s in scales.values())


def test_checker_names_what_tensorrt_refuses(calibrated):
    good = onnx.load(str(calibrated.root / "fine_cnn.int8.trt.onnx"))
    bad = onnx.ModelProto()
    bad.CopyFrom(good)
    zp = next(i for i in bad.graph.initializer if i.name.endswith("zero_point") and i.dims == [])
    zp.CopyFrom(numpy_helper.from_array(np.array(3, np.int8), zp.name))
    with pytest.raises(ExportError, match="zero point is not 0"):
        trt.check_trt_qdq(bad)
    bad.CopyFrom(good)
    scale = next(i for i in bad.graph.initializer if i.name.endswith("_scale") and len(i.dims) == 1 and i.dims[0] > 1)
    scale.CopyFrom(numpy_helper.from_array(np.array(0.1, np.float32), scale.name))  # per-tensor weight
    with pytest.raises(ExportError, match="expected per-channel on axis"):
        trt.check_trt_qdq(bad)


def _residual_model():
    """x -> Conv a -> Relu -> Conv b -> Add(b, relu) and a downsample Add(Conv c(x), Conv d(x)): ResNet's two
    block shapes."""
    rng = np.random.default_rng(0)
    w = {n: numpy_helper.from_array(rng.standard_normal((4, 4, 1, 1)).astype(np.float32), n) for n in "abcd"}
    nodes = [helper.make_node("Conv", ["x", "a"], ["ya"], name="ca"), helper.make_node("Relu", ["ya"], ["r"], name="r"),
             helper.make_node("Conv", ["r", "b"], ["yb"], name="cb"),
             helper.make_node("Add", ["yb", "r"], ["s1"], name="add1"),
             helper.make_node("Conv", ["s1", "c"], ["yc"], name="cc"),
             helper.make_node("Conv", ["s1", "d"], ["yd"], name="cd"),
             helper.make_node("Add", ["yc", "yd"], ["y"], name="add2")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 3, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 3, 3])], list(w.values()))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_residual_adds_get_qdq_on_the_residual_input_only(tmp_path):
    model = _residual_model()
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    feeds = [{"x": np.random.default_rng(k).standard_normal((1, 4, 3, 3)).astype(np.float32)} for k in range(8)]
    ranges, data = model_ranges(path, feeds, "minmax")
    acts = Activations("m", "minmax", None, ranges, data, "f", "t", "0" * 64, 8)
    qdq = trt._quantize(model, acts)
    counts = trt.check_trt_qdq(qdq)
    assert counts["residual_adds"] == 2
    producer = {o: n for n in qdq.graph.node for o in n.output}
    add1, add2 = (next(n for n in qdq.graph.node if n.name == a) for a in ("add1", "add2"))
    assert producer[add1.input[0]].op_type == "Conv" and producer[add1.input[1]].op_type == "DequantizeLinear"
    assert producer[add2.input[0]].op_type == "Conv" and producer[add2.input[1]].op_type == "DequantizeLinear"
    scale = {i.name: numpy_helper.to_array(i) for i in qdq.graph.initializer}[producer[add2.input[1]].input[1]]
    assert float(scale) == pytest.approx(acts.amax("yd") / 127, rel=1e-6)
    ort.InferenceSession(qdq.SerializeToString()).run(None, feeds[0])
    # without the residual pass the checker says what TensorRT would do
    with pytest.raises(ExportError, match="residual add2 has no Q/DQ on its residual input"):
        trt.check_trt_qdq(trt._quantize(model, acts, residual=False))


def test_sensitivity_ranks_layers_and_exclusions_record_why(calibrated):
    costs = trt.sensitivity(calibrated, "fine_cnn", samples=8)
    assert {c.layer for c in costs} == {"/conv/Conv", "/fc/Gemm"} and costs[0].cosine <= costs[1].cosine
    why = {costs[0].layer: "measured"}
    new = trt.quantize_trt(calibrated, "fine_cnn", exclude=why)
    assert new[0].info["quantization"]["excluded"] == why and new[0].info["quantization"]["layers"] == 1


def test_step_roles_need_force_and_int8_needs_feeds(calibrated, tmp_path):
    with pytest.raises(ConfigError, match="fine_step .*not quantized to INT8.*--force"):
        trt.quantize_trt(calibrated, "fine_step")
    root = fixture_bundles.copy_bundle(fixture_bundles.LITEEVAL["mixed"], tmp_path / "raw")
    with pytest.raises(CalibrationError, match="no calibration feeds for role coarse_cnn.*edgevid calibrate"):
        trt.quantize_trt(load_bundle(root), "coarse_cnn")
    with pytest.raises(ConfigError, match="unknown calibration method"):
        trt.quantize_trt(calibrated, "coarse_cnn", method="mse")


def test_forced_step_role_keeps_outputs_and_concat_float(calibrated):
    """coarse_step's state feeds a Concat and is a graph output: onnxruntime would hand both its DQ."""
    art = trt.quantize_trt(calibrated, "coarse_step", force=True)[0]
    assert art.info["quantization"]["forced"] and art.info["quantization"]["agreement_on_calibration_feeds"]["cosine"] > 0.99
    path = calibrated.root / "_step.onnx"
    art.write(path)
    model = onnx.load(str(path))
    trt.check_trt_qdq(model)
    producer = {o: n for n in model.graph.node for o in n.output}
    assert all(producer[o.name].op_type != "DequantizeLinear" for o in model.graph.output)
