"""Which backends exist, which one ``auto`` means, and which artifact of a bundle role backs a session.

::

    open_role(bundle, role, backend="auto", precision=None)
        │  resolve_backend: "auto" → the best backend that is installed and can run this bundle: TensorRT
        │                   when tensorrt and pycuda import and every role has an engine for this device,
        │                   else ONNX Runtime (said once in the log)
        │  select_artifact: the role's ONNX artifact at the precision asked for, or for TensorRT
        │                   select_engine_for (engines.select_engine): the engine built for this TensorRT and GPU,
        │                   at role_precision (None: what edgevid build makes by default)
        ▼
    Session (not active) with the manifest's I/O to check at activation

Backends are named here and imported only when used, so listing them never imports onnxruntime or
TensorRT. An explicitly named backend that cannot load is an error, never a silent fallback.
"""
from __future__ import annotations

import importlib
import logging
from typing import Any, Callable, Dict, Mapping, Optional, Tuple, Type, Union

from .._optional import available, require
from ..errors import BuildError, ConfigError, ManifestError
from ..log import get_logger, once
from ..spec import ARTIFACT_PRECISIONS, Artifact
from . import engines
from .base import Session

log = get_logger(__name__)

# name -> (module, class, the package it needs, what it is)
BACKENDS: Dict[str, Tuple[str, str, str, str]] = {
    "ort": ("edgevid.backends.ort", "OrtSession", "onnxruntime", "ONNX Runtime (CPU)"),
    "trt": ("edgevid.backends.trt", "TrtSession", "tensorrt", "TensorRT (GPU)"),
}
ALSO_NEEDS: Dict[str, Tuple[str, ...]] = {"trt": ("pycuda.driver",)}  # packages besides the main one
AUTO_ORDER = ("trt", "ort")  # what "auto" tries, best first
CHOICES = ("auto",) + tuple(BACKENDS)  # for --backend

Precision = Union[None, str, Mapping[str, Optional[str]]]
SessionFactory = Callable[[Any, str], Session]


def backend_class(name: str) -> Type[Session]:
    """The Session class of backend ``name``, imported now; ConfigError for an unknown name."""
    if name not in BACKENDS:
        raise ConfigError("unknown backend '%s'" % name, None, "choose one of " + ", ".join(CHOICES))
    module, cls, _, _ = BACKENDS[name]
    return getattr(importlib.import_module(module), cls)


def resolve_backend(name: str = "auto", bundle: Any = None, precision: Precision = None) -> str:
    """``name`` itself, or for "auto" the first backend of :data:`AUTO_ORDER` that is installed and can run
    ``bundle`` at ``precision`` (logged once): one that runs engines only when every role of the bundle has an
    engine for this device, never for a file outside a bundle (``bundle`` None).

    An explicit backend whose packages are missing raises DependencyError naming what to install."""
    if name != "auto":
        backend_class(name)  # ConfigError for an unknown name
        for package in _packages(name):
            require(package, "the %s backend" % BACKENDS[name][3])
        return name
    for candidate in AUTO_ORDER:
        if not all(available(p) for p in _packages(candidate)):
            continue
        why_not = _cannot_run(candidate, bundle, precision)
        if why_not is None:
            once(log, logging.INFO, "backend auto: using %s" % BACKENDS[candidate][3])
            return candidate
        once(log, logging.INFO, "backend auto: not %s: %s" % (BACKENDS[candidate][3], why_not))
    first = AUTO_ORDER[-1]
    require(BACKENDS[first][2], "the %s backend" % BACKENDS[first][3])  # raises DependencyError
    return first


def _packages(name: str) -> Tuple[str, ...]:
    return (BACKENDS[name][2],) + ALSO_NEEDS.get(name, ())


def cannot_run(name: str, bundle: Any, precision: Precision = None) -> Optional[str]:
    """Why backend ``name`` cannot run ``bundle`` here (a package missing, no GPU, no engine for this device),
    or None when it can: the rule "auto" picks by, for callers that try every backend (edgevid bench)."""
    missing = [p for p in _packages(name) if not available(p)]
    if missing:
        return "%s not installed" % ", ".join(missing)
    return _cannot_run(name, bundle, precision)


def _cannot_run(name: str, bundle: Any, precision: Precision) -> Optional[str]:
    """Why "auto" must not pick backend ``name`` for ``bundle`` (None: it can run it)."""
    if backend_class(name).ARTIFACT_KIND != engines.KIND:
        return None
    if bundle is None:
        return "it runs engines of a bundle, not a single ONNX file"
    try:
        device = this_device(name)
    except Exception as e:  # no GPU, a driver error, a broken install: auto is where falling back is right
        return "no usable GPU (%s)" % (e,)
    for role in bundle.rules.roles:
        try:
            select_engine_for(bundle, role, _role_precision(precision, role), device)
        except BuildError as e:  # EngineMismatchError too
            return "%s (%s)" % (e.what, device.describe())
    return None


def this_device(name: str) -> engines.Device:
    """The device backend ``name`` builds and runs engines for (its module's ``current_device()``)."""
    return importlib.import_module(BACKENDS[name][0]).current_device()


def _role_precision(precision: Precision, role: str) -> Optional[str]:
    return precision.get(role) if isinstance(precision, Mapping) else precision


def check_precision(precision: str) -> None:
    """ConfigError for a precision no artifact can have."""
    if precision not in ARTIFACT_PRECISIONS:
        raise ConfigError("unknown precision %r" % (precision,), None, "choose one of " + ", ".join(ARTIFACT_PRECISIONS))


def check_role_precision(bundle: Any, role: str, precision: str) -> None:
    """ConfigError for an unknown precision or one the family forbids for ``role``."""
    check_precision(precision)
    rule = bundle.rules.precision_rule(role)
    if not rule.allows(precision):
        raise ConfigError("role %s of a %s bundle cannot run at %s" % (role, bundle.family, precision),
                          rule.why, "use one of " + ", ".join(rule.allowed) + " for this role")


DEFAULT = "default"  # the precision edgevid build makes and a run on TensorRT uses unless told otherwise


def role_precision(bundle: Any, role: str, precision: Optional[str] = None) -> Tuple[str, Optional[str]]:
    """(the precision ``role`` runs or is built at, why it is not the one asked) for a run or build at
    ``precision``, or at None / "default": the family's TensorRT default for the role.

    The one rule of ``edgevid build`` (engine_build/plan.py), of a run on TensorRT without a precision
    (:func:`select_engine_for`) and of a run at a precision (:func:`precision_plan`): FP32 where asked; else FP32
    for a role the family's rules keep off the precision, one ``edgevid quantize`` kept FP32 after measuring
    (bundle.json "precision"), or one for which the precision is opt-in and quantize has not made its graph.
    ConfigError for an unknown precision."""
    rule = bundle.rules.precision_rule(role)
    wanted = rule.default if precision in (None, DEFAULT) else precision
    check_precision(wanted)
    if wanted == "fp32":
        return "fp32", None
    if not rule.allows(wanted):
        return "fp32", "the %s rules keep it off %s: %s" % (bundle.family, wanted, rule.why)
    kept = _kept_by_quantize(bundle, role, wanted)
    if kept:
        return "fp32", "edgevid quantize kept it FP32: %s" % kept
    if wanted in rule.opt_in and not bundle.graph(role).find("onnx", wanted):
        return "fp32", "%s is opt-in for this role (edgevid quantize --role %s): %s" % (wanted, role, rule.why)
    return wanted, None


def _kept_by_quantize(bundle: Any, role: str, precision: str) -> Optional[str]:
    record = (bundle.meta.get("precision") or {}).get(precision) or {}
    return ((record.get("roles") or {}).get(role) or {}).get("kept")


def select_engine_for(bundle: Any, role: str, precision: Optional[str], device: engines.Device) -> Artifact:
    """The engine of ``role`` for ``device`` at ``precision`` (None: what ``edgevid build`` makes by default,
    :func:`role_precision`), through :func:`engines.select_engine`: BuildError when there is none (says: edgevid
    build), EngineMismatchError when the role's engines were built for another TensorRT version or GPU."""
    if precision is None:
        precision, _ = role_precision(bundle, role, None)
    check_role_precision(bundle, role, precision)
    return engines.select_engine(bundle, role, precision, device)


def select_artifact(bundle: Any, role: str, kind: str, precision: Optional[str] = None,
                    target: Optional[str] = None) -> Artifact:
    """The artifact of ``role`` a session of ``kind`` runs at ``precision`` (None: FP32 ONNX, or the only engine).

    Among several of that precision, the one made for ``target`` (its info "target", e.g. "cpu" or "trt") wins,
    then one made for no target in particular. ConfigError for a precision the family forbids for the role;
    ManifestError when the bundle lacks it."""
    graph = bundle.graph(role)
    if precision is not None:
        check_role_precision(bundle, role, precision)
    wanted = precision or ("fp32" if kind == "onnx" else None)
    found = graph.find(kind, wanted)
    if not found:
        raise ManifestError("bundle %s has no %s%s artifact for role %s" % (bundle.root, wanted + " " if wanted else "",
                                                                           kind, role),
                            "it has " + ", ".join("%s %s" % (a.kind, a.precision) for a in graph.all_artifacts()),
                            "make it first (INT8/FP16 graphs come from 'edgevid quantize', engines from the "
                            "TensorRT build), or run at fp32")
    # a graph made for another backend is never a silent stand-in (ONNX Runtime's fused int8 kernels are not
    # what TensorRT computes on a TensorRT-form graph); ask for that target to run it anyway
    usable = sorted((a for a in found if a.info.get("target") in (target, None)),
                    key=lambda a: a.info.get("target") is None)
    if not usable:
        forms = sorted({str(a.info.get("target")) for a in found})
        raise ManifestError("bundle %s has %s graphs of role %s for %s only" % (bundle.root, wanted, role,
                                                                            ", ".join(forms)),
                            "this backend runs the %s form" % target,
                            "make it: edgevid quantize %s --precision %s --target %s" % (bundle.root, wanted, target))
    return usable[0]


def open_role(bundle: Any, role: str, backend: str = "auto", precision: Optional[str] = None, *,
              target: Optional[str] = None, **options: Any) -> Session:
    """A (not yet active) session for ``role`` of ``bundle`` on ``backend`` at ``precision``.

    ``target`` picks the form of a reduced-precision graph (default: the backend's own; "trt" runs the TensorRT
    form on ONNX Runtime, to measure it). ``options`` go to the backend's session (ONNX Runtime: ``threads``,
    ``spin``, ``providers``)."""
    name = resolve_backend(backend, bundle, precision)
    cls = backend_class(name)
    if cls.ARTIFACT_KIND == engines.KIND:
        artifact = select_engine_for(bundle, role, precision, this_device(name))
    else:
        artifact = select_artifact(bundle, role, cls.ARTIFACT_KIND, precision, target or cls.ARTIFACT_TARGET)
    graph = bundle.graph(role)
    return cls(bundle.path(artifact), name=role, precision=artifact.precision or "fp32",
               expected=(graph.inputs, graph.outputs), **options)


def session_factory(backend: str = "auto", precision: Precision = None,
                    options: Optional[Mapping[str, Mapping[str, Any]]] = None, *,
                    target: Optional[str] = None) -> SessionFactory:
    """``factory(bundle, role) -> Session`` opening each role with :func:`open_role`.

    ``precision`` is one for all roles or a mapping role → precision; ``options`` maps a role (or "*"
    for every role) to backend options. An explicit backend is resolved here; "auto" once per bundle, at its
    first role, since whether TensorRT can run it depends on its engines (all roles then run on one backend)."""
    name = resolve_backend(backend) if backend != "auto" else "auto"
    options = dict(options or {})
    chosen: Dict[str, str] = {}  # bundle folder -> the backend auto chose for it

    def factory(bundle: Any, role: str) -> Session:
        role_options = dict(options.get("*", {}), **options.get(role, {}))
        key = str(bundle.root)
        if key not in chosen:
            chosen[key] = resolve_backend(name, bundle, precision)
        return open_role(bundle, role, chosen[key], _role_precision(precision, role), target=target,
                         **role_options)

    return factory


def open_session(path: Any, backend: str = "auto", name: Optional[str] = None, **options: Any) -> Session:
    """A session for one ONNX file outside a bundle (tools, benchmarks); bundles use :func:`open_role`."""
    return backend_class(resolve_backend(backend))(path, name=name, **options)


def backend_names(per_role: Mapping[str, Mapping[str, Any]]) -> str:
    """One line for reports from ``{role: session.describe()}``: the backend that ran, or names joined by +."""
    return "+".join(sorted({d["backend"] for d in per_role.values()}))


def precision_plan(bundle: Any, precision: Optional[str], kind: str = "onnx") -> Dict[str, str]:
    """{role: precision} for a run at ``precision`` on ``kind`` artifacts. None: each backend's own default, fp32
    for every role on ONNX graphs, on engines what ``edgevid build`` makes by default (:func:`role_precision`).

    A run asks for one precision; :func:`role_precision` says per role what it is, as for ``edgevid build
    --precision``: roles whose rule forbids it (the recurrent steps for int8) run at fp32 rather than fail, since
    the request means "as fast as this bundle allows", and so do roles ``edgevid quantize`` kept higher
    (bundle.json "precision") and roles for which it is opt-in and was not made. A role that may run at the
    precision but has no artifact of it is an error: a silent fallback would report a speedup that never
    happened.

    ConfigError for an unknown precision; ManifestError, saying to quantize first, when a role the rules
    allow at ``precision`` has no ``kind`` artifact of it (BuildError, saying to build, for engines)."""
    wanted = precision or (DEFAULT if kind == engines.KIND else "fp32")
    plan: Dict[str, str] = {}
    missing = []
    for role in bundle.rules.roles:
        plan[role], _ = role_precision(bundle, role, wanted)
        if plan[role] != "fp32" and not bundle.graph(role).find(kind, plan[role]):
            missing.append(role)
    if missing and kind == engines.KIND and wanted == DEFAULT:
        raise BuildError("bundle %s has no engine for %s at %s" % (bundle.root, ", ".join(missing), ", ".join(
                             sorted({plan[r] for r in missing}))),
                         "a run on TensorRT without a precision uses the engines edgevid build makes by default",
                         "build them on the device: edgevid build %s" % bundle.root)
    if missing and kind == engines.KIND:
        raise BuildError("bundle %s has no %s engine for %s" % (bundle.root, wanted, ", ".join(missing)),
                         "a run at %s uses one wherever the family rules allow it" % wanted,
                         "build them on the device: edgevid build %s --precision %s" % (bundle.root, wanted))
    if missing:
        raise ManifestError("bundle %s has no %s graph for %s" % (bundle.root, wanted, ", ".join(missing)),
                            "a run at %s uses one wherever the family rules allow it" % wanted,
                            "make them first (edgevid calibrate %s --recipe calibration/%s.json, then quantize), "
                            "or run at fp32" % (bundle.root, bundle.family))
    if wanted == DEFAULT:
        log.info("precision: %s (what edgevid build makes by default)",
                 ", ".join("%s %s" % kv for kv in plan.items()))
    elif wanted != "fp32":
        kept = sorted(r for r, p in plan.items() if p != wanted)
        log.info("precision %s: %s%s", wanted, ", ".join("%s %s" % kv for kv in plan.items()),
                 "; %s kept fp32 (family rules, quantize's measurement or an opt-in not made)" % ", ".join(kept)
                 if kept else "")
    return plan
