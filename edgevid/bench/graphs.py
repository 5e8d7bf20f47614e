"""Per-graph timing (docs/bench.md §3): every role of a bundle on every backend that can run it here and at every
precision the bundle holds for it, ``session.infer`` timed over real inputs after an untimed warm-up.

Inputs are the role's recorded calibration feeds when the bundle has them, else zeros of the declared shapes;
each result says which, since a graph with data-dependent work (none of edgevid's today) would time differently
on zeros. A backend that cannot run the bundle is listed with the reason, never timed as another.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from ..backends import engines, registry
from ..errors import BuildError, CalibrationError, ConfigError, ManifestError
from ..metrics import latency_summary
from ..spec import ARTIFACT_PRECISIONS
from .timing import time_calls

Progress = Callable[[str], None]
# ONNX Runtime's conv kernels can beat its own MatMul by a little; beyond this the declared GMACs must be wrong
ABOVE_PEAK = 1.5
# a torch module is no part of a bundle: eager timing needs the checkpoint, which the device never has
TORCH_NOT_MEASURED = ("a bundle holds ONNX graphs and engines, not PyTorch modules; eager PyTorch as a reference "
                      "needs the checkpoint: edgevid bench --checkpoint CKPT (where torch is installed)")


def backends_to_time(bundle: Any, backend: str = "auto", precision: Optional[str] = None
                     ) -> Tuple[List[str], Dict[str, str]]:
    """(backends to time, {backend: why it is skipped}). "auto": every backend that can run the bundle here. An
    explicit one that cannot raises the registry's own error, as ``edgevid run --backend`` does: DependencyError
    naming the package, BuildError saying to build the engines, EngineMismatchError for another device's."""
    if backend != "auto":
        registry.resolve_backend(backend)  # ConfigError for an unknown name, DependencyError naming the package
        if registry.backend_class(backend).ARTIFACT_KIND == engines.KIND:
            check_engines(bundle, backend, precision)
        return [backend], {}
    chosen, skipped = [], {}
    for name in registry.BACKENDS:
        why = registry.cannot_run(name, bundle, precision)
        if why:
            skipped[name] = why
        else:
            chosen.append(name)
    if not chosen:
        raise ConfigError("no backend can run bundle %s here" % bundle.root,
                          "; ".join("%s: %s" % kv for kv in skipped.items()), "install onnxruntime")
    return chosen, skipped


def check_engines(bundle: Any, backend: str, precision: Optional[str]) -> None:
    """Every role has an engine for this device at what ``precision`` means for it, or the registry's error."""
    plan = registry.precision_plan(bundle, precision, engines.KIND)  # BuildError: edgevid build
    device = registry.this_device(backend)
    for role, p in plan.items():
        registry.select_engine_for(bundle, role, p, device)  # EngineMismatchError: built for another device


def precisions_to_time(bundle: Any, role: str, backend: str, precision: Optional[str] = None) -> List[str]:
    """The precisions of ``role`` to time on ``backend``: the one ``precision`` means for the role (the registry's
    rule: FP32 where the family keeps the role off it), or every precision the bundle holds an artifact of that
    this backend runs. ManifestError / BuildError (from the registry) when a precision asked for is missing."""
    kind = registry.backend_class(backend).ARTIFACT_KIND
    if precision is not None:
        return [registry.precision_plan(bundle, precision, kind)[role]]
    return [p for p in ARTIFACT_PRECISIONS if _runnable(bundle, role, backend, p)]


def _runnable(bundle: Any, role: str, backend: str, precision: str) -> bool:
    cls = registry.backend_class(backend)
    try:
        if cls.ARTIFACT_KIND == engines.KIND:
            registry.select_engine_for(bundle, role, precision, registry.this_device(backend))
        else:
            registry.select_artifact(bundle, role, cls.ARTIFACT_KIND, precision, cls.ARTIFACT_TARGET)
    except (BuildError, ConfigError, ManifestError):  # not held, not for this device or form, or forbidden
        return False
    return True


def role_inputs(bundle: Any, role: str) -> Tuple[List[Dict[str, Any]], Dict[str, Any]]:
    """(one feed dict per recorded call, what they are): the calibration feeds, else zeros of the manifest's
    input specs (one call), with the reason."""
    import numpy as np

    from ..quant.activations import feed_list
    from ..quant.feeds import load_feeds

    try:
        feeds = feed_list(load_feeds(bundle, role))
        return feeds, {"kind": "calibration feeds", "samples": len(feeds)}
    except CalibrationError as e:  # none recorded or stale: zeros, and the report says why
        zeros = {t.name: np.zeros(t.shape, dtype=t.dtype) for t in bundle.graph(role).inputs}
        return [zeros], {"kind": "zeros of the declared input shapes", "samples": 1, "why": e.what}


def cycled(feeds: Sequence[Dict[str, Any]], count: int) -> Iterator[Dict[str, Any]]:
    """``count`` feeds, going round ``feeds`` again when there are fewer (warm-up and runs may outnumber them)."""
    for k in range(count):
        yield feeds[k % len(feeds)]


def time_session(session: Any, feeds: Sequence[Dict[str, Any]], runs: int, warmup: int) -> List[float]:
    """Seconds of each of ``runs`` ``session.infer`` calls after ``warmup`` untimed ones (the session active)."""
    stream = cycled(feeds, warmup + runs)
    return time_calls(lambda: session.infer(next(stream)), runs, warmup)


def peak_for(peak: Mapping[str, Any], precision: str) -> Tuple[Optional[float], str]:
    """(the peak a graph at ``precision`` is measured against, its name in ``context.matmul_peak``): INT8 graphs
    run integer kernels, which do several times the float work per cycle; every other precision the float32 one
    (ONNX Runtime on a CPU has no fast FP16 GEMM; on a GPU the CPU's peak is no yardstick, so it reads as context)."""
    key = "int8_peak_gops" if precision == "int8" else "peak_gflops"
    value = peak.get(key)
    return (float(value) if isinstance(value, (int, float)) else None), key


def rates(gmacs: Optional[float], summary: Dict[str, Any], peak_gflops: Optional[float]) -> Dict[str, Any]:
    """Achieved GFLOP/s (2 × GMACs per call over the mean latency) and its share of the matmul peak; None with
    the reason when the bundle declares no GMACs for the role or there is no peak or timing."""
    if gmacs is None:
        return {"gflops": None, "peak_share": None, "why": "the bundle declares no gmacs for this role"}
    if not summary.get("mean"):
        return {"gflops": None, "peak_share": None, "why": "no timed runs"}
    gflops = 2.0 * gmacs / (summary["mean"] / 1000.0)
    share = gflops / peak_gflops if peak_gflops else None
    out: Dict[str, Any] = {"gflops": gflops, "peak_share": share}
    if share is not None and share > ABOVE_PEAK:
        out["why"] = ("%.1f× the measured matmul peak: more work per second than this machine can do, so the "
                      "bundle's gmacs (%g) is not what this graph computes; check it with edgevid info" % (share, gmacs))
    return out


def time_role(bundle: Any, role: str, backend: str, precision: str, feeds: Sequence[Dict[str, Any]], *,
              runs: int, warmup: int, peak: Mapping[str, Any]) -> Dict[str, Any]:
    """One result: what ran, its latency summary and achieved rate."""
    session = registry.open_role(bundle, role, backend, precision)
    with session, session.thread_context():  # TensorRT: this thread's CUDA context (engine_build/trt_ops.py too)
        seconds = time_session(session, feeds, runs, warmup)
        ran = session.describe()
    summary = latency_summary(seconds)
    result = {"role": role, "backend": ran["backend"], "precision": ran["precision"], "artifact": ran["artifact"],
              "warmup": warmup, "latency_ms": summary}
    value, key = peak_for(peak, ran["precision"])
    result.update(rates(bundle.graph(role).gmacs, summary, value), peak=key)
    return result


def plan_graphs(bundle: Any, backend: str = "auto", precision: Optional[str] = None
                ) -> Tuple[List[Tuple[str, str, str]], Dict[str, str]]:
    """([(role, backend, precision) to time], {backend skipped: why}); raises for a backend or precision the
    bundle cannot run here, so callers check it before measuring anything else."""
    chosen, skipped = backends_to_time(bundle, backend, precision)
    plan = [(role, name, p) for role in bundle.rules.roles for name in chosen
            for p in precisions_to_time(bundle, role, name, precision)]
    return plan, skipped


def measure_graphs(bundle: Any, *, backend: str = "auto", precision: Optional[str] = None, runs: int = 50,
                   warmup: int = 5, peak: Optional[Mapping[str, Any]] = None,
                   progress: Optional[Progress] = None) -> Dict[str, Any]:
    """The ``graphs`` section: a result per role × backend × precision, the inputs used per role, the backends
    skipped and why, and each result's speed-up over FP32 of the same role and backend. ``peak`` is
    ``context.matmul_peak`` (no share of peak without it); ``add_eager`` adds PyTorch eager."""
    check_counts(runs, warmup)
    plan, skipped = plan_graphs(bundle, backend, precision)
    results, inputs, feeds = [], {}, {}
    for role, name, p in plan:
        if role not in feeds:
            feeds[role], inputs[role] = role_inputs(bundle, role)
        if progress:
            progress("graphs: %s on %s at %s (%d warm-up + %d runs)" % (role, name, p, warmup, runs))
        results.append(time_role(bundle, role, name, p, feeds[role], runs=runs, warmup=warmup, peak=peak or {}))
    add_speedups(results)
    return {"runs": runs, "warmup": warmup, "precision_asked": precision, "kept_fp32": kept_fp32(bundle, precision),
            "inputs": inputs, "results": results, "skipped_backends": skipped,
            "torch": {"not_measured": TORCH_NOT_MEASURED}}


def add_eager(section: Dict[str, Any], bundle: Any, eager: Mapping[str, Any], *,
              peak: Optional[Mapping[str, Any]] = None, progress: Optional[Progress] = None) -> None:
    """PyTorch eager per role (``eager``: role -> RoleGraph from the checkpoint) into a ``graphs`` section, on the
    feeds the graphs got, and every result's speed-up over it (``vs_torch``). Called after every other measure:
    torch's OpenMP threads keep spinning after a call and would slow what runs next."""
    from .eager import time_eager

    runs, warmup = section["runs"], section["warmup"]
    for role in bundle.rules.roles:
        if progress:
            progress("graphs: %s on PyTorch eager (%d warm-up + %d runs)" % (role, warmup, runs))
        result = time_eager(role, eager[role], role_inputs(bundle, role)[0], runs=runs, warmup=warmup)
        value, key = peak_for(peak or {}, "fp32")
        result.update(rates(bundle.graph(role).gmacs, result["latency_ms"], value), peak=key)
        section["results"].append(result)
    roles = list(bundle.rules.roles)
    section["results"].sort(key=lambda r: (roles.index(r["role"]), r["backend"] == "torch"))  # eager by its graph
    section["torch"] = {"roles": roles, "threads": section["results"][-1]["threads"],
                        "what": "the checkpoint's export wrappers, eager, in inference mode, on the same feeds"}
    add_speedups(section["results"])


def kept_fp32(bundle: Any, precision: Optional[str]) -> Dict[str, str]:
    """{role: why it runs at FP32} for a run at ``precision`` (the registry's rule), so a figure timed at FP32 never
    reads as the precision asked for."""
    if precision is None:
        return {}
    whys = {role: registry.role_precision(bundle, role, precision)[1] for role in bundle.rules.roles}
    return {role: why for role, why in whys.items() if why}


def check_counts(runs: int, warmup: int) -> None:
    if runs < 1 or warmup < 0:
        raise ConfigError("--runs %d --warmup %d" % (runs, warmup), "a summary needs at least one timed run and "
                          "warm-up cannot be negative", "use --runs 1 or more and --warmup 0 or more")


def add_speedups(results: List[Dict[str, Any]]) -> None:
    """``vs_fp32``: FP32's mean latency over this one's, for the same role and backend (None without an FP32)."""
    fp32 = {(r["role"], r["backend"]): r["latency_ms"]["mean"] for r in results if r["precision"] == "fp32"}
    for r in results:
        r["vs_fp32"] = _over(fp32.get((r["role"], r["backend"])), r["latency_ms"]["mean"])
        if r["backend"] != "torch" and (r["role"], "torch") in fp32:
            r["vs_torch"] = _over(fp32[(r["role"], "torch")], r["latency_ms"]["mean"])


def _over(base: Optional[float], mean: Optional[float]) -> Optional[float]:
    return base / mean if base and mean else None
