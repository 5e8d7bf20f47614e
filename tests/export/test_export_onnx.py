"""The generic exporter: exact names, static batch-1 shapes, atomic writes, and the TensorRT scan."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper
from torch import nn

from edgevid.errors import ExportError
from edgevid.export.onnx import check_tensorrt_compatible, export_onnx, op_counts
from edgevid.spec import TensorSpec


class TwoInTwoOut(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(6, 4)
        self.drop = nn.Dropout(0.5)

    def forward(self, x, h_in):
        y = torch.tanh(self.drop(self.lin(x)) + h_in)
        return y, torch.sigmoid(y) * h_in


def _inputs():
    gen = torch.Generator().manual_seed(0)
    return OrderedDict([("x", torch.randn(1, 6, generator=gen)), ("h_in", torch.randn(1, 4, generator=gen))])


def test_exact_names_specs_and_outputs(tmp_path):
    module = TwoInTwoOut().train()  # export must use eval mode (no dropout) and restore the flag
    inputs, outputs = export_onnx(module, _inputs(), ["y", "h_out"], tmp_path / "g.onnx")
    assert module.training and module.drop.training
    assert inputs == [TensorSpec("x", (1, 6)), TensorSpec("h_in", (1, 4))]
    assert outputs == [TensorSpec("y", (1, 4)), TensorSpec("h_out", (1, 4))]
    assert [p.name for p in tmp_path.iterdir()] == ["g.onnx"]  # no temp files left
    model = onnx.load(str(tmp_path / "g.onnx"))
    assert model.opset_import[0].version == 17 and model.ir_version <= 8
    assert "Dropout" not in op_counts(model)
    sess = ort.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    feeds = {k: v.numpy() for k, v in _inputs().items()}
    got = sess.run(None, feeds)
    with torch.no_grad():
        ref = module.eval()(*_inputs().values())
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a, b.numpy(), atol=1e-6)


def test_unused_input_is_refused_and_nothing_is_written(tmp_path):
    class Unused(nn.Module):
        def forward(self, x, h_in):
            return x * 2

    with pytest.raises(ExportError, match="inputs"):
        export_onnx(Unused(), _inputs(), ["y"], tmp_path / "g.onnx")
    assert list(tmp_path.iterdir()) == []


def test_inputs_must_follow_forward_signature(tmp_path):
    swapped = OrderedDict(reversed(list(_inputs().items())))
    with pytest.raises(ExportError, match="do not follow forward"):
        export_onnx(TwoInTwoOut(), swapped, ["y", "h_out"], tmp_path / "g.onnx")


def test_batch_must_be_one_and_names_must_be_identifiers(tmp_path):
    with pytest.raises(ExportError, match="batch-1"):
        export_onnx(TwoInTwoOut(), OrderedDict([("x", torch.randn(2, 6)), ("h_in", torch.randn(2, 4))]),
                    ["y", "h_out"], tmp_path / "g.onnx")
    with pytest.raises(ExportError, match="unusable tensor names"):
        export_onnx(TwoInTwoOut(), _inputs(), ["y", "x"], tmp_path / "g.onnx")
    with pytest.raises(ExportError, match="unusable tensor names"):
        export_onnx(TwoInTwoOut(), _inputs(), ["input.1", "y"], tmp_path / "g.onnx")
    assert list(tmp_path.iterdir()) == []


def test_wrong_number_of_output_names_is_refused(tmp_path):
    with pytest.raises(ExportError, match="outputs"):
        export_onnx(TwoInTwoOut(), _inputs(), ["y"], tmp_path / "g.onnx")


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore::UserWarning")
def test_torch_lstm_is_refused_by_the_scan(tmp_path):
    """nn.LSTM exports as an ONNX LSTM op: the scan must refuse it, naming op and node."""
    class Seq(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(4, 3, batch_first=True)

        def forward(self, x):
            return self.lstm(x)[0]

    with pytest.raises(ExportError, match=r"node '.*' \(LSTM\).*forbids"):
        export_onnx(Seq(), OrderedDict([("x", torch.randn(1, 5, 4))]), ["y"], tmp_path / "g.onnx")
    assert list(tmp_path.iterdir()) == []


# -- the scan on hand-built graphs ---------------------------------------------------------------
def _graph(nodes, inputs, outputs, initializers=(), opset=17, domains=()):
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    imports = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, 1) for d in domains]
    return helper.make_model(g, opset_imports=imports)


def _vi(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def test_scan_refuses_onnx_lstm():
    w = helper.make_tensor("W", TensorProto.FLOAT, [1, 12, 4], np.zeros(48, np.float32))
    r = helper.make_tensor("R", TensorProto.FLOAT, [1, 12, 3], np.zeros(36, np.float32))
    node = helper.make_node("LSTM", ["x", "W", "R"], ["y"], name="my_lstm", hidden_size=3)
    model = _graph([node], [_vi("x", [5, 1, 4])], [_vi("y", [5, 1, 1, 3])], [w, r])
    onnx.checker.check_model(model)  # a valid ONNX graph, refused only by the contract
    with pytest.raises(ExportError) as e:
        check_tensorrt_compatible(model, what="test graph")
    assert "my_lstm" in str(e.value) and "LSTM" in str(e.value) and "one explicit step" in str(e.value)


@pytest.mark.parametrize("op", ["Loop", "Scan", "If", "GRU", "RNN", "SequenceConstruct", "RandomNormalLike"])
def test_scan_refuses_control_flow_sequences_and_random(op):
    node = helper.make_node(op, ["x"], ["y"], name="n1")
    model = _graph([node], [_vi("x", [1, 4])], [_vi("y", [1, 4])])
    with pytest.raises(ExportError, match=r"'n1' \(%s\)" % op):
        check_tensorrt_compatible(model)


def test_scan_refuses_ops_tensorrt_85_lacks():
    node = helper.make_node("Unique", ["x"], ["y"], name="uniq")
    model = _graph([node], [_vi("x", [1, 4])], [_vi("y", [4])])
    with pytest.raises(ExportError, match=r"'uniq' \(Unique\), which TensorRT 8.5 cannot parse"):
        check_tensorrt_compatible(model)


def test_scan_refuses_custom_domains_and_new_opsets():
    node = helper.make_node("FusedGemm", ["x"], ["y"], name="fg", domain="com.microsoft")
    with pytest.raises(ExportError, match="domain 'com.microsoft'"):
        check_tensorrt_compatible(_graph([node], [_vi("x", [1, 4])], [_vi("y", [1, 4])], domains=["com.microsoft"]))
    relu = helper.make_node("Relu", ["x"], ["y"], name="r")
    with pytest.raises(ExportError, match="opset 18"):
        check_tensorrt_compatible(_graph([relu], [_vi("x", [1, 4])], [_vi("y", [1, 4])], opset=18))
    check_tensorrt_compatible(_graph([relu], [_vi("x", [1, 4])], [_vi("y", [1, 4])]))  # fine as is


def test_scan_refuses_runtime_slice_bounds_and_float64():
    starts = helper.make_tensor("starts", TensorProto.INT64, [1], [0])
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    node = helper.make_node("Slice", ["x", "starts", "ends", "axes"], ["y"], name="sl")
    ends = helper.make_tensor_value_info("ends", TensorProto.INT64, [1])
    model = _graph([node], [_vi("x", [1, 4]), ends], [_vi("y", [1, 2])], [starts, axes])
    with pytest.raises(ExportError, match=r"'sl' \(Slice\) whose input 2 \('ends'\) is computed at run time"):
        check_tensorrt_compatible(model)
    w = helper.make_tensor("w", TensorProto.DOUBLE, [1, 4], [1.0] * 4)
    add = helper.make_node("Add", ["x", "w"], ["y"], name="a")
    with pytest.raises(ExportError, match="float64"):
        check_tensorrt_compatible(_graph([add], [_vi("x", [1, 4])], [_vi("y", [1, 4])], [w]))
