"""What a build reads back and reports, as plain values: layer precisions from the engine inspector's JSON
(layers.py), the calibration cache made ready for the device (calibration.py), TensorRT's errors (failures.py)."""
from __future__ import annotations

import json

import pytest

from edgevid.backends.trt import MAX_LOG_LINES, unloadable
from edgevid.engine_build import calibration, failures, layers
from edgevid.errors import BuildError, EngineMismatchError


def inspector_json(*formats, reformat=True):
    """The shape of get_engine_information(LayerInformationFormat.JSON) at ProfilingVerbosity.DETAILED."""
    rows = [{"Name": "conv%d" % i, "LayerType": "CaskConvolution",
             "Inputs": [{"Name": "in", "Format/Datatype": "Row major linear FP32"}],
             "Outputs": [{"Name": "out%d" % i, "Format/Datatype": f}]} for i, f in enumerate(formats)]
    if reformat:
        rows.append({"Name": "Reformatting CopyNode", "LayerType": "Reformat",
                     "Outputs": [{"Name": "x", "Format/Datatype": "Row major linear FP32"}]})
    return json.dumps({"Layers": rows, "Bindings": ["frame", "v"]})


def test_layer_precisions_are_counted_and_fp32_layers_named():
    summary = layers.summarize(inspector_json("Channel major FP16 format where channel % 8 == 0",
                                              "Four wide channel vectorized row major Int8 format",
                                              "Row major linear FP32"))
    assert summary["available"] and summary["counts"] == {"fp16": 1, "int8": 1, "fp32": 1}
    assert summary["fp32_layers"] == ["conv2"]  # the reformat layer is not computation


def test_without_detail_or_inspector_nothing_is_claimed():
    assert layers.summarize(None) == {"available": False}
    assert layers.summarize(json.dumps({"Layers": ["conv0", "conv1"]})) == {"available": False, "layers": 2}
    layers.check("backbone", "int8", {"available": False})  # nothing read: nothing to refuse


def test_a_layer_that_takes_int8_counts_even_when_it_gives_fp32():
    rows = [{"Name": "conv", "LayerType": "CaskConvolution",
             "Inputs": [{"Name": "q", "Format/Datatype": "Four wide channel vectorized row major Int8 format"}],
             "Outputs": [{"Name": "y", "Format/Datatype": "Row major linear FP32"}]}]
    summary = layers.summarize(json.dumps({"Layers": rows}))
    assert summary["counts"] == {"fp32": 1} and summary["tensor_precisions"] == ["fp32", "int8"]
    layers.check("backbone", "int8", summary)


def test_an_engine_with_no_layer_at_the_precision_asked_is_refused():
    fp32_only = layers.summarize(inspector_json("Row major linear FP32", "Row major linear FP32"))
    with pytest.raises(BuildError, match="int8 engine of role backbone has no layer at int8"):
        layers.check("backbone", "int8", fp32_only)
    with pytest.raises(BuildError, match="fp16 engine"):
        layers.check("backbone", "fp16", fp32_only)
    fp16_only = layers.summarize(inspector_json("Channel major FP16 format"))
    layers.check("backbone", "fp16", fp16_only)
    with pytest.raises(BuildError):
        layers.check("backbone", "int8", fp16_only)  # an INT8 engine that is FP16 throughout is a downgrade
    layers.check("step", "fp32", fp32_only)


def test_the_cache_header_is_rewritten_for_the_device():
    text = "TRT-8502-EntropyCalibration2\nframe: 3c010a14\n/conv/Relu_output_0: 3d000000\n"
    data, algorithm, adapted = calibration.cache_for_device(text, "10.3.0.30")
    assert data.decode().splitlines() == ["TRT-100300-EntropyCalibration2", "frame: 3c010a14",
                                          "/conv/Relu_output_0: 3d000000"]
    assert algorithm == "EntropyCalibration2" and adapted
    data, algorithm, adapted = calibration.cache_for_device(text, "8.5.2.2")
    assert data.decode() == text and not adapted
    assert calibration.cache_for_device("TRT-8601-MinMaxCalibration\n", "8.6.1")[1:] == ("MinMaxCalibration", False)
    with pytest.raises(BuildError, match="does not start with a TensorRT header.*quantize"):
        calibration.cache_for_device("frame 0.5\n", "8.5.2")


def test_parser_errors_are_reported_in_full_with_their_nodes():
    error = failures.parse_failure("fine_cnn", "fine_cnn.onnx", [
        {"node": 3, "desc": "Unsupported ONNX data type: UINT8", "code": "ErrorCode.UNSUPPORTED_NODE",
         "node_name": "/q/QuantizeLinear", "operator": "QuantizeLinear"},
        {"node": 7, "desc": "Assertion failed: axis"}])
    text = str(error)
    assert isinstance(error, BuildError) and error.exit_code == 6
    assert "TensorRT cannot parse fine_cnn.onnx (role fine_cnn)" in text
    assert ("error 1 at node 3 (/q/QuantizeLinear, QuantizeLinear) [ErrorCode.UNSUPPORTED_NODE]: Unsupported ONNX "
            "data type: UINT8") in text
    assert "error 2 at node 7: Assertion failed: axis" in text


def test_build_and_load_failures_say_what_to_do():
    text = str(failures.build_failure("clip", "int8", ["a"] * 20 + ["out of memory"]))
    assert "could not build the int8 engine of role clip" in text and "out of memory" in text
    assert text.count("a |") == MAX_LOG_LINES - 1 and "--workspace" in text
    assert "TensorRT logged no error" in str(failures.build_failure("clip", "int8", []))
    # loading is the backend's, the same error at a build as at a run
    error = unloadable("clip.fp16.trt8.5.sm72.engine", 64, ["b"] * 20 + ["magic tag does not match"])
    text = str(error)
    assert isinstance(error, EngineMismatchError) and error.exit_code == 6
    assert "cannot load the engine clip.fp16.trt8.5.sm72.engine (64 bytes)" in text
    assert "edgevid build BUNDLE --force" in text and "magic tag does not match" in text
    assert text.count("b |") == MAX_LOG_LINES - 1
