"""The CUDA plumbing and LiteEval's GPU plan on a real CUDA GPU through real pycuda (skipped elsewhere, never
faked): the primary context pushed per thread, page-locked round trips, two streams ordered by an event, and the
plan executed by the real DeviceExecutor, its engines replaced by device-to-device copies (real CUDA work on the
streams) so that every feature, state and logit can be traced to the frame it came from. With TensorRT as well:
TrtSession on an engine built here, a corrupt engine refused, and the LiteEval and PreRNN fixture bundles
streamed on engines (PreRNN's state on the device, zeroed there at its resets) against ONNX Runtime."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from edgevid.spec import TensorSpec

pytestmark = pytest.mark.gpu


def driver():
    cuda = pytest.importorskip("pycuda.driver")
    try:
        cuda.init()
        count = cuda.Device.count()
    except cuda.Error as e:  # pycuda installed, no usable driver or GPU
        pytest.skip("no CUDA device: %s" % e)
    if count == 0:
        pytest.skip("no CUDA device")
    return cuda


def test_the_primary_context_is_current_inside_pushed_and_in_that_thread_only():
    cuda = driver()
    from edgevid.backends import cuda as cudalib

    seen, errors = {}, []

    def work(name):
        try:
            assert cuda.Context.get_current() is None
            with cudalib.pushed(0):
                with cudalib.pushed(0):  # nested, as a pipeline thread entering several sessions' contexts
                    buffer = cudalib.DeviceBuffer(64)  # needs a current context
                    buffer.free()
                seen[name] = cuda.Context.get_current() is not None
            seen[name + " after"] = cuda.Context.get_current()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=("t%d" % i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert all(seen["t%d" % i] for i in range(3)) and all(seen["t%d after" % i] is None for i in range(3))
    assert cudalib.primary_context(0) is cudalib.primary_context(0)  # retained once per process


def test_pinned_buffers_round_trip():
    driver()
    from edgevid.backends import cuda as cudalib

    with cudalib.pushed(0):
        stream = cudalib.new_stream()
        tensor = cudalib.Pinned((2, 3), "float32")
        want = np.arange(6, dtype=np.float32).reshape(2, 3) + 0.5
        tensor.host[...] = want
        tensor.to_device(stream)
        stream.synchronize()
        tensor.host[...] = 0
        tensor.to_host(stream)
        stream.synchronize()
        assert np.array_equal(tensor.host, want)
        tensor.free()


def test_an_event_orders_a_copy_on_another_stream():
    cuda = driver()
    from edgevid.backends import cuda as cudalib

    n = 1 << 24  # 64 MiB: the upload takes long enough that an unordered reader would see stale memory
    with cudalib.pushed(0):
        a, b = cudalib.new_stream(), cudalib.new_stream()
        src, dst = cudalib.Pinned((n,), "float32"), cudalib.Pinned((n,), "float32")
        ready = cudalib.new_event()
        for value in (1.0, 2.0, 3.0):
            src.host[...] = value
            dst.host[...] = -1
            src.to_device(a)
            cudalib.record(ready, a)
            cudalib.wait(b, ready)
            cuda.memcpy_dtod_async(dst.device, src.device, src.nbytes, b)
            dst.to_host(b)
            b.synchronize()
            a.synchronize()
            assert float(dst.host.min()) == float(dst.host.max()) == value


# LiteEval's plan on copy "engines" ---------------------------------------------------------------------------
W = 8  # every tensor is [1, W] float32, gate_logits [1, 2]


class CopySession:
    """An engine made of device-to-device copies: each output takes the first bytes of one input. It has the
    enqueue() of TrtSession, so the real DeviceExecutor drives it on real streams with real events."""

    def __init__(self, cuda, role, copies):
        from edgevid.families.liteeval import ROLE_IO

        self.cuda, self.name, self.copies = cuda, role, copies
        ins, outs = ROLE_IO[role]
        self.inputs = [TensorSpec(n, (1, W), "float32") for n in ins]
        self.outputs = [TensorSpec(n, (1, 2) if n == "gate_logits" else (1, W), "float32") for n in outs]

    def activate(self):
        from edgevid.backends import cuda as cudalib

        self.buffers = {t.name: cudalib.Pinned(t.shape, t.dtype) for t in self.inputs + self.outputs}
        self.copied = cudalib.new_event()
        return self

    def enqueue(self, stream, *, host=None, device=None, fetch=()):
        from edgevid.backends import cuda as cudalib

        ptr = {n: (device or {}).get(n, b.ptr) for n, b in self.buffers.items()}
        if host:
            self.copied.synchronize()  # as TrtSession: the last upload out of the page-locked input is done
            for name, array in host.items():
                self.buffers[name].host[...] = array
                self.buffers[name].to_device(stream)
            cudalib.record(self.copied, stream)
        for out, src in self.copies.items():
            self.cuda.memcpy_dtod_async(ptr[out], ptr[src], self.buffers[out].nbytes, stream)
        for name in fetch:
            self.cuda.memcpy_dtoh_async(self.buffers[name].host, ptr[name], stream)
        return {name: self.buffers[name].host for name in fetch}


COPIES = {
    "coarse_cnn": {"feat": "frame"},
    # gate = the frame's first two values; logits_sync = the previous step's feature (h_c carries it)
    "coarse_step": {"v_c": "feat_c", "h_c_out": "feat_c", "c_c_out": "c_c_in", "gate_logits": "feat_c",
                    "h_f_sync": "h_f_in", "c_f_sync": "c_f_in", "logits_sync": "h_c_in"},
    "fine_cnn": {"feat": "frame"},
    # logits = v_c (this step's coarse feature); h_f = the fine feature, c_f = the last fine feature
    "fine_step": {"h_f_out": "feat_f", "c_f_out": "h_f_in", "logits": "v_c"},
}


def coarse_frame(t, fine):
    frame = np.full((1, W), float(t + 10), np.float32)
    frame[0, :2] = (1.0, 0.0) if fine else (0.0, 1.0)  # gate channel 0 wins: fine
    return frame


def test_the_liteeval_plan_on_real_streams_carries_each_frames_data_through(tmp_path):
    cuda = driver()
    from edgevid.backends import cuda as cudalib
    from edgevid.runtime.device import liteeval as gp

    steps, queue_size = 40, 2
    rng = np.random.RandomState(0)
    gates = [bool(g) for g in rng.rand(steps) < 0.5]
    slots = gp.ring_slots(queue_size)
    settings = {"fine_cap": None, "fine_window": None, "max_steps": 1000, "max_gap_s": None}
    plan = {"settings": settings, "contract": {"states": {s: (1, W) for s in gp.STATES}}}
    with cudalib.pushed(0):
        sessions = {role: CopySession(cuda, role, copies).activate() for role, copies in COPIES.items()}
    executor = gp.DeviceExecutor(sessions, 0).prepare(gp.all_ops(slots))
    ring = gp.FeatureRing(slots, wait_s=10.0)
    policy = gp.DeviceGatedPolicy(None, sessions, executor, slots, plan=plan)
    made, errors = [], []

    def coarse_thread():  # the coarse stage: as far ahead as the ring lets it
        try:
            with cudalib.pushed(0):
                for t in range(steps):
                    feature = ring.claim()
                    executor.run(gp.plan_coarse(feature.seq, slots),
                                 {"coarse_cnn": {"frame": coarse_frame(t, gates[t])}})
                    made.append(feature)
        except BaseException as e:
            errors.append(e)

    thread = threading.Thread(target=coarse_thread)
    thread.start()
    results = []
    with cudalib.pushed(0):
        for t in range(steps):
            while len(made) <= t and not errors:
                time.sleep(0.0005)
            assert not errors, errors
            fine_frame = np.full((1, W), float(t + 100), np.float32)
            logits, path = policy.step(made[t], fine_frame, None)
            results.append((path, float(logits[0, -1])))
    thread.join()
    assert not errors, errors
    for t, (path, value) in enumerate(results):
        assert path == ("fine" if gates[t] else "coarse"), t
        # fine: this step's own coarse feature (v_c); skip: the previous step's, through the h_c ping-pong
        want = t + 10 if gates[t] else (t - 1 + 10 if t else 0.0)
        assert value == want, (t, path, value, want)


# with TensorRT ---------------------------------------------------------------------------------------------
def build_engine(trt, onnx_bytes):
    from edgevid.backends.trt import logger as one_logger

    logger = one_logger(trt)  # TensorRT wants one logger per process: edgevid's, as the sessions use
    builder = trt.Builder(logger)
    explicit = getattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH", None)  # gone (the default) in 11
    network = builder.create_network(1 << int(explicit) if explicit is not None else 0)
    parser = trt.OnnxParser(network, logger)
    assert parser.parse(onnx_bytes), [parser.get_error(i) for i in range(parser.num_errors)]
    plan = builder.build_serialized_network(network, builder.create_builder_config())
    assert plan is not None
    return bytes(plan)


@pytest.mark.trt
def test_a_trt_session_runs_an_engine_and_refuses_a_corrupt_one(tmp_path):
    driver()
    trt = pytest.importorskip("tensorrt")
    from edgevid.backends.trt import TrtSession, current_device
    from edgevid.errors import EngineMismatchError
    from tests.helpers.onnx_files import identity_model

    path = tmp_path / "id.engine"
    path.write_bytes(build_engine(trt, identity_model("frame", "feat", (1, 4))))
    device = current_device()
    assert device.sm.isdigit() and device.trt_version == trt.__version__
    feed = np.arange(4, dtype=np.float32).reshape(1, 4)
    result = {}

    def in_a_worker():
        with TrtSession(path) as session, session.thread_context():
            assert [t.name for t in session.inputs] == ["frame"] and session.outputs[0].shape == (1, 4)
            result["out"] = np.array(session.infer({"frame": feed})["feat"])

    worker = threading.Thread(target=in_a_worker)
    worker.start()
    worker.join()
    assert np.array_equal(result["out"], feed)
    truncated = tmp_path / "cut.engine"
    truncated.write_bytes(path.read_bytes()[:64])
    with pytest.raises(EngineMismatchError, match="truncated or corrupt"):
        TrtSession(truncated).activate()


@pytest.mark.trt
def test_liteeval_streams_on_engines_as_on_onnx_runtime(tmp_path):
    driver()
    trt = pytest.importorskip("tensorrt")
    from edgevid.backends.engines import engine_file, engine_info
    from edgevid.backends.trt import current_device
    from edgevid.bundle import NewArtifact, load_bundle
    from edgevid.runtime import StreamRuntime
    from tests.helpers.bundles import LITEEVAL, copy_bundle

    bundle = load_bundle(copy_bundle(LITEEVAL["mixed"], tmp_path / "b"))
    device = current_device()
    new = []
    for role in bundle.rules.roles:
        plan = build_engine(trt, bundle.path(bundle.graph(role).source).read_bytes())  # fp32 engines
        info = engine_info(device, dla_core=None, workspace_mib=0, source_sha256="test")
        new.append(NewArtifact(role, "engine", engine_file(role, "fp32", device),
                               lambda p, plan=plan: p.write_bytes(plan), precision="fp32", info=info))
    bundle.add_artifacts(new)
    bundle = load_bundle(bundle.root)
    pytest.importorskip("cv2")  # the preprocessing resizes with OpenCV
    runs = {}
    for backend in ("ort", "trt"):
        for pipelined in (True, False):
            with StreamRuntime(bundle, backend, precision="fp32", queue_size=2, pipelined=pipelined) as runtime:
                runs[backend, pipelined] = [(p.label, p.path) for p in runtime.run("synthetic:seed=3,frames=24")]
            assert {d["backend"] for d in runtime.stats.to_dict()["sessions"].values()} == {backend}
    assert len(runs["ort", True]) == 24 and len({p for _, p in runs["ort", True]}) == 2  # both branches ran
    # fp32 engines against ONNX Runtime: same gates and labels, frame by frame, pipelined or not
    assert runs["trt", True] == runs["trt", False] == runs["ort", True]


def add_fp32_engines(trt, bundle):
    """The bundle with an fp32 engine of every role built here (reloaded)."""
    from edgevid.backends.engines import engine_file, engine_info
    from edgevid.backends.trt import current_device
    from edgevid.bundle import NewArtifact, load_bundle

    device = current_device()
    new = []
    for role in bundle.rules.roles:
        plan = build_engine(trt, bundle.path(bundle.graph(role).source).read_bytes())
        info = engine_info(device, dla_core=None, workspace_mib=0, source_sha256="test")
        new.append(NewArtifact(role, "engine", engine_file(role, "fp32", device),
                               lambda p, plan=plan: p.write_bytes(plan), precision="fp32", info=info))
    bundle.add_artifacts(new)
    return load_bundle(bundle.root)


@pytest.mark.trt
@pytest.mark.parametrize("cell", ["lstm", "gru", "lstm_u"])
def test_prernn_streams_on_engines_with_its_state_on_the_device_as_on_onnx_runtime(tmp_path, monkeypatch, cell):
    driver()
    trt = pytest.importorskip("tensorrt")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("cv2")  # the preprocessing resizes with OpenCV
    from edgevid.backends import open_role
    from edgevid.bundle import load_bundle
    from edgevid.runtime import StreamRuntime
    from edgevid.runtime.device import prernn as rp
    from tests.helpers.bundles import PRERNN, copy_bundle

    bundle = add_fp32_engines(trt, load_bundle(copy_bundle(PRERNN[cell], tmp_path / "b")))
    source = "synthetic:seed=5,segments=3,frames=40"
    # resets on the device: every 7 steps, and at the scene cuts (two on this source at this threshold)
    options = {"max_steps": 7, "scene_cut": 0.05}

    def step_engine_only(bundle, role):  # the backbone on ONNX Runtime: its output goes up with the step
        return open_role(bundle, role, "trt" if role == "step" else "ort", "fp32")

    made = []

    class Spied(rp.DeviceRecurrent):  # which device plan each engine run took
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self.ring is not None)

    monkeypatch.setattr(rp, "DeviceRecurrent", Spied)
    runs, stats = {}, {}
    for name, sessions, backend, pipelined in (("ort", None, "ort", True), ("trt", None, "trt", True),
                                               ("trt seq", None, "trt", False),
                                               ("ort+trt", step_engine_only, "auto", True)):
        with StreamRuntime(bundle, backend, precision="fp32", sessions=sessions, queue_size=2,
                           pipelined=pipelined, **options) as runtime:
            runs[name] = [(p.label, p.logits.copy()) for p in runtime.run(source)]
        stats[name] = runtime.stats.to_dict()
    assert {d["backend"] for d in stats["trt"]["sessions"].values()} == {"trt"}
    assert {r: d["backend"] for r, d in stats["ort+trt"]["sessions"].items()} == {"backbone": "ort", "step": "trt"}
    ref = runs["ort"]
    assert len(ref) == 120 and set(stats["ort"]["resets_by_cause"]) == {"max_steps", "scene_cut"}
    for name in ("trt", "trt seq", "ort+trt"):
        assert stats[name]["resets_by_cause"] == stats["ort"]["resets_by_cause"], name
        assert [label for label, _ in runs[name]] == [label for label, _ in ref], name
        # fp32 engines against ONNX Runtime, the state carried on the device over 120 steps and its resets
        err = max(float(np.abs(a - b).max()) for (_, a), (_, b) in zip(runs[name], ref))
        assert err < 1e-2, (name, err)  # (TensorRT may run fp32 convolutions in TF32)
    # the state on the device in every engine run; the backbone's output too where the backbone is an engine
    assert made == [True, True, False]
