"""OrtSession follows the Session contract (docs/architecture.md §3) and refuses bad feeds clearly."""
from __future__ import annotations

import numpy as np
import pytest

from edgevid.backends import open_session
from edgevid.errors import ConfigError, FrameError, SessionError
from edgevid.spec import TensorSpec
from tests.helpers.onnx_files import identity_model, write_identity_onnx

pytest.importorskip("onnxruntime")


@pytest.fixture
def graph(tmp_path):
    path = tmp_path / "g.onnx"
    write_identity_onnx(path, "frame", "feat", (1, 3))
    return path


def test_lifecycle_and_specs(graph):
    session = open_session(graph, backend="ort")
    assert not session.active and session.inputs == []  # construction touches nothing
    with session:
        assert session.inputs == [TensorSpec("frame", (1, 3))]
        assert session.outputs == [TensorSpec("feat", (1, 3))]
        x = np.arange(3, dtype=np.float32).reshape(1, 3)
        np.testing.assert_array_equal(session.infer({"frame": x})["feat"], x)
    assert not session.active


def test_auto_picks_onnxruntime_here(graph):
    assert open_session(graph, backend="auto").backend == "ort"


def test_infer_before_activate(graph):
    with pytest.raises(SessionError, match="not active"):
        open_session(graph, backend="ort").infer({"frame": np.zeros((1, 3), np.float32)})


def test_wrong_feed_names_shape_and_dtype(graph):
    with open_session(graph, backend="ort") as s:
        with pytest.raises(SessionError, match="missing"):
            s.infer({"x": np.zeros((1, 3), np.float32)})
        with pytest.raises(FrameError, match=r"expects \(1, 3\) float32"):
            s.infer({"frame": np.zeros((1, 4), np.float32)})
        with pytest.raises(FrameError, match="float64"):
            s.infer({"frame": np.zeros((1, 3))})


def test_corrupt_and_missing_graph(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00not an onnx model")
    with pytest.raises(SessionError, match="cannot load"):
        open_session(bad, backend="ort").activate()
    with pytest.raises(SessionError, match="does not exist"):
        open_session(tmp_path / "none.onnx", backend="ort").activate()


def test_unknown_and_unavailable_backend(graph):
    with pytest.raises(ConfigError, match="unknown backend"):
        open_session(graph, backend="cuda")
    with pytest.raises(ConfigError, match="unknown backend 'cuda'.*auto, ort, trt"):
        open_session(graph, backend="cuda")


def test_the_hand_written_identity_graph_is_what_onnx_helper_writes():
    """tests/helpers/onnx_files writes ONNX without the onnx package (a device has none): where onnx is
    installed, its checker accepts the bytes and they parse to the graph onnx.helper builds."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    model = onnx.load_from_string(identity_model("frame", "feat", (1, 3)))
    onnx.checker.check_model(model, full_check=True)
    spec = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 3]) for n in ("frame", "feat")]
    graph = helper.make_graph([helper.make_node("Identity", ["frame"], ["feat"])], "g", spec[:1], spec[1:])
    assert model.graph == graph and model.ir_version == 8 and [o.version for o in model.opset_import] == [17]


@pytest.mark.parametrize("spin, allow, stop", [("never", "0", None), ("run", "1", "1"), ("always", "1", None)])
def test_threads_and_spinning_reach_onnxruntime(graph, spin, allow, stop):
    with open_session(graph, backend="ort", threads=2, spin=spin) as s:
        options = s._session.get_session_options()
        assert options.intra_op_num_threads == 2
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == allow
        if stop is not None:
            assert options.get_session_config_entry("session.force_spinning_stop") == stop


def test_bad_spin_is_a_config_error(graph):
    with pytest.raises(ConfigError, match="spin"):
        open_session(graph, backend="ort", spin=False)
