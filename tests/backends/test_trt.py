"""The trt backend on a machine without TensorRT: what the registry decides (auto, explicit, which engine), the
errors that say what to do, and that a TrtSession is cheap until it activates. Whether TensorRT and pycuda are
installed and which device this is are the only things replaced (the registry's lookups of both); the
decisions and the engine selection are the real code. Real runs: tests/backends/test_cuda_gpu.py."""
from __future__ import annotations

import logging
import sys
import types

import pytest

from edgevid import log as edgevid_log
from edgevid.backends import open_role, open_session, registry, session_factory
from edgevid.backends.engines import Device, engine_file, engine_info
from edgevid.backends.trt import TrtSession
from edgevid.bundle import NewArtifact, load_bundle
from edgevid.errors import BuildError, ConfigError, DependencyError, EngineMismatchError, SessionError
from tests.helpers.bundles import LITEEVAL, copy_bundle

XAVIER = Device("8.5.2.2", "72", dla_cores=2, name="Xavier")
ORIN = Device("10.3.0.30", "87", dla_cores=2, name="Orin")


@pytest.fixture
def bundle(tmp_path):
    return load_bundle(copy_bundle(LITEEVAL["mixed"], tmp_path / "b"))


def add_engines(bundle, device, roles=None):
    """An engine per role at the family's TensorRT default precision, built (on paper) for ``device``."""
    new = []
    for role in roles or bundle.rules.roles:
        precision = bundle.rules.precision_rule(role).default
        info = engine_info(device, dla_core=None, workspace_mib=256, source_sha256="s")
        new.append(NewArtifact(role, "engine", engine_file(role, precision, device), lambda p: p.write_bytes(b"plan"),
                               precision=precision, info=info))
    bundle.add_artifacts(new)
    return load_bundle(bundle.root)


@pytest.fixture
def gpu_here(monkeypatch):
    """TensorRT and pycuda "installed" (empty modules: nothing here may use them) and this machine a Xavier, as
    far as the registry can tell."""
    for name in ("tensorrt", "pycuda", "pycuda.driver"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setattr(registry, "this_device", lambda name: XAVIER)
    monkeypatch.setattr(edgevid_log, "_said_once", set())  # each test sees its own "said once" lines


def test_auto_picks_tensorrt_when_every_role_has_an_engine_for_this_device(bundle, gpu_here, caplog):
    caplog.set_level(logging.INFO, logger="edgevid")
    bundle = add_engines(bundle, XAVIER)
    assert registry.resolve_backend("auto", bundle) == "trt"
    session = open_role(bundle, "coarse_cnn", "auto")
    assert isinstance(session, TrtSession) and not session.active
    assert session.path.name == "coarse_cnn.fp16.trt8.5.sm72.engine" and session.precision == "fp16"
    assert open_role(bundle, "coarse_step", "auto").path.name == "coarse_step.fp32.trt8.5.sm72.engine"
    assert "backend auto: using TensorRT (GPU)" in caplog.text
    factory = session_factory("auto", options={"*": {"threads": 1, "spin": "never"}})  # the runtime's options
    assert {factory(bundle, role).backend for role in bundle.rules.roles} == {"trt"}


def test_auto_keeps_onnx_runtime_without_engines_for_this_device_and_says_why(bundle, gpu_here, caplog):
    caplog.set_level(logging.INFO, logger="edgevid")
    assert registry.resolve_backend("auto", bundle) == "ort"
    assert "not TensorRT (GPU): role coarse_cnn has no fp16 engine for the GPU" in caplog.text
    bundle = add_engines(bundle, ORIN)  # built on another device
    assert registry.resolve_backend("auto", bundle) == "ort"
    bundle = add_engines(bundle, XAVIER, roles=["coarse_cnn", "fine_cnn"])  # not every role
    assert registry.resolve_backend("auto", bundle) == "ort"
    assert session_factory("auto")(bundle, "coarse_cnn").backend == "ort"  # one backend for the whole bundle
    assert registry.resolve_backend("auto") == "ort"  # a file outside a bundle has no engines


def test_auto_without_a_usable_gpu_keeps_onnx_runtime(bundle, gpu_here, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="edgevid")
    bundle = add_engines(bundle, XAVIER)

    def no_gpu(name):
        raise RuntimeError("cuInit failed: no CUDA-capable device is detected")

    monkeypatch.setattr(registry, "this_device", no_gpu)
    assert registry.resolve_backend("auto", bundle) == "ort"
    assert "no usable GPU (cuInit failed" in caplog.text


def test_explicit_trt_never_falls_back(bundle, gpu_here):
    with pytest.raises(BuildError, match="role coarse_cnn has no fp16 engine") as e:
        open_role(bundle, "coarse_cnn", "trt")
    assert not isinstance(e.value, EngineMismatchError) and "edgevid build" in str(e.value)
    bundle = add_engines(bundle, ORIN)
    with pytest.raises(EngineMismatchError, match="built with TensorRT 10.3.0.30, this device has 8.5.2.2") as e:
        open_role(bundle, "coarse_cnn", "trt")
    assert "rebuild on this device: edgevid build" in str(e.value).lower()
    with pytest.raises(ConfigError, match="cannot run at int8"):
        open_role(bundle, "coarse_step", "trt", precision="int8")  # the family's rule, as for ONNX


def test_explicit_trt_without_tensorrt_names_the_jetpack_package(bundle):
    if registry.available("tensorrt"):
        pytest.skip("TensorRT is installed here")
    with pytest.raises(DependencyError, match="python3-libnvinfer") as e:
        open_role(bundle, "coarse_cnn", "trt")
    assert "JetPack" in str(e.value) and "never installed from pip" in str(e.value)
    with pytest.raises(DependencyError):
        session_factory("trt")  # an explicit backend is checked when the factory is made
    assert registry.resolve_backend("auto", bundle) == "ort"


def test_explicit_trt_without_pycuda_names_the_jetson_extra(bundle, monkeypatch):
    if registry.available("pycuda"):
        pytest.skip("pycuda is installed here")
    monkeypatch.setitem(sys.modules, "tensorrt", types.ModuleType("tensorrt"))
    with pytest.raises(DependencyError, match=r'pycuda.*pip install "edgevid\[jetson\]"'):
        registry.resolve_backend("trt")


def test_a_session_is_cheap_until_activated_and_says_what_it_is(tmp_path):
    session = TrtSession(tmp_path / "missing.engine", name="fine_cnn", precision="int8", threads=2, spin="never")
    assert session.describe() == {"backend": "trt", "precision": "int8", "artifact": "missing.engine"}
    assert (TrtSession.ARTIFACT_KIND, TrtSession.ARTIFACT_TARGET) == ("engine", "trt")
    with pytest.raises(SessionError, match="not active"):
        session.enqueue(host={})
    with pytest.raises(SessionError, match="does not exist"):
        session.activate()
    if registry.available("tensorrt"):
        return
    (tmp_path / "fine.engine").write_bytes(b"plan")
    with pytest.raises(DependencyError, match="python3-libnvinfer"):
        TrtSession(tmp_path / "fine.engine").activate()


def test_a_single_onnx_file_never_goes_to_tensorrt(gpu_here, tmp_path):
    from tests.helpers.onnx_files import identity_model

    path = tmp_path / "id.onnx"
    path.write_bytes(identity_model("frame", "feat", (1, 3)))
    assert open_session(path, "auto").backend == "ort"


def test_a_run_at_a_precision_on_tensorrt_needs_engines_of_it(bundle):
    with pytest.raises(BuildError, match="no int8 engine for coarse_cnn, fine_cnn") as e:
        registry.precision_plan(bundle, "int8", kind="engine")
    assert "edgevid build" in str(e.value)
    bundle = add_engines(bundle, XAVIER)  # fp16 CNNs, fp32 steps (the family's TensorRT defaults)
    with pytest.raises(BuildError, match="no fp16 engine for coarse_step, fine_step"):
        registry.precision_plan(bundle, "fp16", kind="engine")  # the steps may run fp16: a run at fp16 wants it
    assert registry.precision_plan(bundle, "fp32", kind="engine") == dict.fromkeys(bundle.rules.roles, "fp32")


def test_one_logger_for_runtime_and_builder_that_collects_what_tensorrt_reports(monkeypatch, caplog):
    """The logger and deserialize over a stand-in for the tensorrt module (an ILogger base and a Runtime that
    logs as TensorRT does on a foreign engine): the errors quoted are the ones logged during the load only."""
    from edgevid.backends import trt as trt_backend

    class ILogger:
        INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = range(5)

        def __init__(self):
            pass

    class Runtime:
        def __init__(self, logger):
            self.logger, self.DLA_core = logger, None

        def deserialize_cuda_engine(self, data):
            self.logger.log(ILogger.WARNING, "using an engine plan file across different models of devices")
            self.logger.log(ILogger.ERROR, "Serialization assertion magicTagRead == kMAGIC_TAG failed")
            return None if data.startswith(b"\0") else "engine"

    trt = types.SimpleNamespace(ILogger=ILogger, Runtime=Runtime)
    monkeypatch.setattr(trt_backend, "_loggers", {})  # a fresh process as far as the logger goes
    caplog.set_level(logging.DEBUG, logger="edgevid")
    logger = trt_backend.logger(trt)
    assert trt_backend.logger(trt) is logger
    logger.log(ILogger.ERROR, "before any load")  # not collected: no block open
    runtime, engine = trt_backend.deserialize(trt, b"plan", "fine.engine", dla_core=1)
    assert engine == "engine" and runtime.DLA_core == 1 and runtime.logger is logger
    with logger.collecting() as outer:
        with pytest.raises(EngineMismatchError, match="cannot load the engine bad.engine") as e:
            trt_backend.deserialize(trt, b"\0" * 16, "bad.engine")
    assert "magicTagRead" in str(e.value) and "before any load" not in str(e.value) and "--force" in str(e.value)
    assert outer == ["Serialization assertion magicTagRead == kMAGIC_TAG failed"]  # blocks nest; warnings not kept
    assert "TensorRT: using an engine plan file" in caplog.text  # warnings go to edgevid's log
