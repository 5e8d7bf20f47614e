"""edgevid build with a real TensorRT on a GPU (marked trt; skipped where TensorRT is not installed). Nothing
here is simulated: engines are built, read back, timed and loaded by the TensorRT of the machine."""
from __future__ import annotations

import pytest

from edgevid.bundle import load_bundle

pytestmark = [pytest.mark.trt, pytest.mark.gpu]


@pytest.fixture
def trt():
    return pytest.importorskip("tensorrt")


@pytest.fixture
def device(trt):
    from edgevid.backends.trt import current_device  # the backend reads the device for building and running

    return current_device()


def test_caps_are_read_from_the_bindings(trt):
    from edgevid.engine_build.trt_ops import caps_of

    caps = caps_of(trt)
    assert caps.precision_flags == hasattr(trt.BuilderFlag, "FP16")
    assert caps.strongly_typed == hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED")


def test_build_reads_layers_back_reuses_and_times(prernn_bundle, device, trt):
    from edgevid.engine_build.builder import build

    report = build(prernn_bundle, "fp32", device=device)
    assert [e["action"] for e in report["engines"]] == ["built", "built"]
    bundle = load_bundle(prernn_bundle.root)
    engine = bundle.graph("backbone").find("engine", "fp32")[0]
    assert engine.info["trt_version"] == device.trt_version and engine.info["source_sha256"] == bundle.graph(
        "backbone").sha256
    assert (bundle.root / report["timing_cache"]).stat().st_size > 0
    if hasattr(trt.ICudaEngine, "create_engine_inspector"):
        assert engine.info["layers"]["available"] and engine.info["layers"]["counts"]
    again = build(bundle, "fp32", device=device)
    assert [e["action"] for e in again["engines"]] == ["reused", "reused"]
    timed = build(load_bundle(bundle.root), "best", device=device)
    assert set(timed["best"]) == {"backbone", "step"}
    assert all(r["timings_ms"]["fp32"] > 0 for r in timed["best"].values())


def test_a_graph_tensorrt_cannot_parse_reports_the_parser_errors(prernn_bundle, trt):
    from edgevid.engine_build.plan import Caps, role_plan
    from edgevid.engine_build.trt_ops import make_engine, caps_of
    from edgevid.backends.engines import Device
    from edgevid.errors import BuildError

    caps: Caps = caps_of(trt)
    item = role_plan(prernn_bundle, "backbone", "fp32", Device(trt.__version__, "0"), caps)
    with pytest.raises(BuildError, match="TensorRT cannot parse backbone.onnx .*error 1 at node"):
        make_engine(trt, item, b"this is not an ONNX model")


def test_a_corrupt_engine_is_a_clear_error(trt):
    from edgevid.backends.trt import deserialize
    from edgevid.errors import BuildError, EngineMismatchError

    with pytest.raises(EngineMismatchError, match="cannot load the engine x.engine.*--force") as e:
        deserialize(trt, b"\0" * 1024, "x.engine")
    assert isinstance(e.value, BuildError) and "TensorRT:" in str(e.value)  # what TensorRT logged, collected


def test_the_builder_and_the_runtime_share_one_logger_that_collects_errors(trt):
    from edgevid.backends.trt import deserialize, logger
    from edgevid.errors import EngineMismatchError

    assert logger(trt) is logger(trt)
    with logger(trt).collecting() as outer:
        with logger(trt).collecting() as inner:
            with pytest.raises(EngineMismatchError):
                deserialize(trt, b"\0" * 64, "y.engine")
        assert inner and outer == inner
    with logger(trt).collecting() as after:
        pass
    assert after == []
