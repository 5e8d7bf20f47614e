"""A bundle's ONNX graph that keeps tensor data in other files is refused before any runtime opens it, even when
bundle.json's sha256 was updated to match (a hand edit or an attack); the scanner reads the protobuf framing
only, without the onnx package (edgevid/onnxfile.py)."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from edgevid.bundle import load_bundle
from edgevid.errors import ManifestError
from edgevid.onnxfile import WireError, external_data
from tests.helpers.bundles import LITEEVAL, committed, copy_bundle

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def external(name, location):
    t = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=[2, 2], data_location=TensorProto.EXTERNAL)
    for key, value in (("location", location), ("offset", "0"), ("length", "16")):
        t.external_data.add(key=key, value=value)
    return t


def model(initializers=(), nodes=()):
    nodes = list(nodes) or [helper.make_node("Identity", ["x"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 2])], list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def test_the_exported_graphs_are_self_contained():
    for name in ("coarse_cnn", "coarse_step", "fine_cnn", "fine_step"):
        assert external_data(committed(LITEEVAL["mixed"]) / (name + ".onnx")) == []


@pytest.mark.parametrize("location", ["../outside.bin", "/etc/passwd", "weights.bin"])
def test_external_initializers_are_found_wherever_they_point(tmp_path, location):
    path = tmp_path / "m.onnx"
    inline = numpy_helper.from_array(np.ones((2, 2), np.float32), "inline")
    path.write_bytes(model([inline, external("w", location)]))
    assert external_data(path) == [("w", location)]


def test_a_tensor_inside_a_node_attribute_or_a_subgraph_is_found(tmp_path):
    const = helper.make_node("Constant", [], ["c"], value=external("c", "../c.bin"))
    branch = helper.make_graph([helper.make_node("Identity", ["x"], ["z"])], "b", [],
                               [helper.make_tensor_value_info("z", TensorProto.FLOAT, [2, 2])], [external("b", "/b")])
    cond = helper.make_node("If", ["x"], ["y"], then_branch=branch, else_branch=branch)
    path = tmp_path / "m.onnx"
    path.write_bytes(model(nodes=[const, cond]))
    assert sorted(external_data(path)) == [("b", "/b"), ("b", "/b"), ("c", "../c.bin")]


def test_bytes_that_are_not_protobuf_are_refused(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"\x3a\xff\xff\xff\xff\x0f" + b"\x00" * 8)  # a graph field longer than the file
    with pytest.raises(WireError):
        external_data(path)


def test_a_bundle_whose_graph_reaches_outside_is_refused_even_with_a_matching_sha256(tmp_path):
    root = copy_bundle(LITEEVAL["mixed"], tmp_path / "b")
    (tmp_path / "outside.bin").write_bytes(np.ones((2, 2), np.float32).tobytes())
    graph = root / "coarse_cnn.onnx"
    graph.write_bytes(model([external("w", "../outside.bin")]))
    manifest = json.loads((root / "bundle.json").read_text())
    manifest["roles"]["coarse_cnn"]["artifacts"][0]["sha256"] = hashlib.sha256(graph.read_bytes()).hexdigest()
    (root / "bundle.json").write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match="keeps the data of 1 tensor.*w: '../outside.bin'") as e:
        load_bundle(root)
    assert "Re-export the bundle" in str(e.value)
