"""Every TensorRT name the package uses exists in every TensorRT it supports, or sits behind a feature check.

Supported (docs/architecture.md §3): 8.5/8.6 (JetPack 5.1 / 6.0, represented by the 8.6.1 bindings), 10.3
(JetPack 6.1/6.2) and 11.x (the newest bindings on PyPI). The APIs are the real binding wheels imported over
stub libraries in a subprocess per version (conftest.py); tests/conformance/apicheck.py is the checker."""
from __future__ import annotations

import textwrap

import pytest

from tests.conformance.apicheck import check, find_uses, lookup
from tests.conformance.conftest import project_uses

pytestmark = pytest.mark.conformance

# The name-based I/O and build calls the TensorRT backend and the engine builder are written against
# (tensorrt-facts.md §6): each must exist in every supported version, with these argument names.
EXPECTED = {
    ("Logger",): (), ("Logger", "WARNING"): (), ("Runtime",): ("logger",),
    ("Runtime", "deserialize_cuda_engine"): ("serialized_engine",),
    ("ICudaEngine", "num_io_tensors"): (), ("ICudaEngine", "get_tensor_name"): ("index",),
    ("ICudaEngine", "get_tensor_mode"): ("name",), ("ICudaEngine", "get_tensor_shape"): ("name",),
    ("ICudaEngine", "get_tensor_dtype"): ("name",), ("ICudaEngine", "create_execution_context"): (),
    ("ICudaEngine", "serialize"): (),
    ("TensorIOMode", "INPUT"): (), ("TensorIOMode", "OUTPUT"): (),
    ("IExecutionContext", "set_input_shape"): ("name", "shape"),
    ("IExecutionContext", "get_tensor_shape"): ("name",),
    ("IExecutionContext", "set_tensor_address"): ("name", "memory"),
    ("IExecutionContext", "execute_async_v3"): ("stream_handle",),
    ("Builder",): ("logger",), ("Builder", "create_network"): ("flags",),
    ("Builder", "create_builder_config"): (), ("Builder", "create_optimization_profile"): (),
    ("Builder", "build_serialized_network"): ("network", "config"),
    ("OnnxParser",): ("network", "logger"), ("OnnxParser", "parse"): ("model",),
    ("OnnxParser", "num_errors"): (), ("OnnxParser", "get_error"): ("index",),
    ("IOptimizationProfile", "set_shape"): ("input", "min", "opt", "max"),
    ("IBuilderConfig", "add_optimization_profile"): ("profile",),
    ("IBuilderConfig", "set_memory_pool_limit"): ("pool", "pool_size"), ("MemoryPoolType", "WORKSPACE"): (),
    ("IBuilderConfig", "default_device_type"): (), ("IBuilderConfig", "DLA_core"): (), ("DeviceType", "DLA"): (),
    ("IBuilderConfig", "set_flag"): ("flag",), ("BuilderFlag", "GPU_FALLBACK"): (),
    ("volume",): (), ("nptype",): (),
}
# What the versions are known to differ in (tools/trtapi/versions.md), as the major version that dropped it:
# proves the three dumps are three different APIs
GONE = {
    ("IExecutionContext", "execute_async_v2"): 10, ("ICudaEngine", "num_bindings"): 10,
    ("BuilderFlag", "FP16"): 11, ("BuilderFlag", "INT8"): 11, ("IBuilderConfig", "int8_calibrator"): 11,
    ("IInt8EntropyCalibrator2",): 11,
}


def test_the_three_supported_families_are_there(trt_apis):
    assert sorted(v.split(".")[0] for v in trt_apis) == ["10", "11", "8"], sorted(trt_apis)
    assert any(v.startswith("10.3") for v in trt_apis)


def test_the_package_uses_only_what_every_supported_tensorrt_has(project_apis):
    uses = project_uses(project_apis, "tensorrt")
    problems = [p for version, api in sorted(project_apis.items()) for p in check(uses, api, version)]
    assert not problems, "TensorRT names missing in a supported version:\n" + "\n".join(problems)


@pytest.mark.parametrize("chain", sorted(EXPECTED), ids=".".join)
def test_the_runtime_and_builder_names_resolve_in_every_version(trt_apis, chain):
    for version, api in trt_apis.items():
        entry = lookup(api["tensorrt"], chain)
        assert entry is not None, "tensorrt.%s is missing from TensorRT %s" % (".".join(chain), version)
        for arg in EXPECTED[chain]:
            overloads = entry.get("params") or []
            assert any(arg in p for p in overloads), "tensorrt.%s takes no %r in TensorRT %s: %s" % (
                ".".join(chain), arg, version, overloads)


def test_the_versions_differ_where_they_are_known_to(trt_apis):
    for version, api in trt_apis.items():
        major = int(version.split(".")[0])
        for chain, gone_in in GONE.items():
            present = lookup(api["tensorrt"], chain) is not None
            assert present == (major < gone_in), "tensorrt.%s in TensorRT %s: present=%s" % (
                ".".join(chain), version, present)


REFERENCE = '''
from edgevid._optional import require


def run_once(path, real_shape, cuda, stream):
    trt = require("tensorrt", "the TensorRT backend")
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    with open(path, "rb") as f:
        engine = runtime.deserialize_cuda_engine(f.read())
    ctx = engine.create_execution_context()
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT and -1 in tuple(engine.get_tensor_shape(name)):
            ctx.set_input_shape(name, real_shape)
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        size = trt.volume(ctx.get_tensor_shape(name))
        dtype = trt.nptype(engine.get_tensor_dtype(name))
        ctx.set_tensor_address(name, int(cuda.mem_alloc(size * dtype().itemsize)))
    ctx.execute_async_v3(stream_handle=stream.handle)


def build(onnx_bytes, precision):
    import tensorrt as trt
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes):
        raise RuntimeError(parser.get_error(0))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 1 << 30)
    if precision == "fp16":
        fp16 = getattr(trt.BuilderFlag, "FP16", None)   # gone in 11: precision comes from the ONNX types
        if fp16 is not None:
            config.set_flag(fp16)
    if precision == "int8" and hasattr(trt.BuilderFlag, "INT8"):
        config.set_flag(trt.BuilderFlag.INT8)
    return builder.build_serialized_network(network, config)
'''


def test_the_reference_run_and_build_sequence_passes_in_every_version(trt_apis):
    uses = find_uses(REFERENCE, "reference.py", trt_apis)
    members = {u.chain for u in uses if u.resolved and len(u.chain) == 2}
    # the sequence is resolved through return types, not only by member names
    assert ("ICudaEngine", "get_tensor_name") in members and ("IExecutionContext", "execute_async_v3") in members
    assert ("IBuilderConfig", "set_memory_pool_limit") in members and ("Builder", "build_serialized_network") in members
    for version, api in trt_apis.items():
        assert check(uses, api, version) == [], version


def test_the_checker_fails_on_the_real_bindings_where_a_name_is_missing_and_unguarded(trt_apis):
    source = textwrap.dedent('''
        import tensorrt as trt

        def legacy(builder, config, calibrator, context, bindings, stream):
            config.set_flag(trt.BuilderFlag.INT8)
            config.int8_calibrator = calibrator
            context.execute_async_v2(bindings, stream_handle=stream)
            context.execute_async_v3(stream=stream)
    ''')
    uses = find_uses(source, "legacy.py", trt_apis)
    by_version = {v: check(uses, api, v) for v, api in trt_apis.items()}
    v8, v10, v11 = (next(v for v in trt_apis if v.startswith(p)) for p in ("8.", "10.", "11."))
    assert [p.split(":")[1] for p in by_version[v8]] == ["8"], by_version[v8]
    assert [p.split(":")[1] for p in by_version[v10]] == ["7", "8"], by_version[v10]
    assert [p.split(":")[1] for p in by_version[v11]] == ["5", "6", "7", "8"], by_version[v11]
    assert all(("tensorrt %s:" % v11) in p for p in by_version[v11])
    assert "'stream'" in by_version[v8][0] and "stream_handle" in by_version[v8][0]
