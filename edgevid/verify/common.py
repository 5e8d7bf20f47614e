"""What every family's parity check shares: the bundle check, sessions, inference with copied outputs and
error measures (max-abs, row-wise cosine). Heavy packages are imported inside functions."""
from __future__ import annotations

import contextlib
from typing import Any, Dict, Iterator, List

import numpy as np

from ..errors import EdgevidError, ExportError
from ..metrics import row_cosines

DEFAULT_STEPS = 300


def family_bundle(bundle, family: str, roles):
    """``bundle`` (a Bundle or its folder) checked to be of ``family`` with ``roles``; ExportError otherwise."""
    from ..bundle import Bundle, load_bundle

    if not isinstance(bundle, Bundle):
        try:
            bundle = load_bundle(bundle)
        except EdgevidError as e:
            raise ExportError("cannot verify the bundle %s" % bundle, str(e), "pass a complete %s bundle" % family) from e
    if bundle.family != family or any(r not in bundle.graphs for r in roles):
        raise ExportError("bundle %s is not a %s bundle" % (bundle.root, family),
                          "family %s with roles %s" % (bundle.family, sorted(bundle.graphs)),
                          "pass a bundle exported for %s" % family)
    return bundle


def require_for_verify(module: str):
    from .._optional import require
    try:
        return require(module, "parity verification")
    except ImportError as e:
        raise ExportError("cannot verify without %s" % module, str(e), "install edgevid[export]") from e


def as_numpy(a):
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a)


@contextlib.contextmanager
def role_sessions(bundle, roles, backend: str = "auto", threads: int = 0, sessions=None) -> Iterator[Dict[str, Any]]:
    """Active sessions for ``roles``, deactivated afterwards: opened through the backend registry (``backend``,
    ``threads`` intra-op threads), or taken from ``sessions`` (a mapping role → Session, or a factory
    ``sessions(bundle, role)``), the way StreamRuntime takes them. ExportError when one cannot open."""
    from ..backends import session_factory

    if sessions is None:
        factory = session_factory(backend, None, {"*": {"threads": threads}} if threads else None)
    elif callable(sessions):
        factory = sessions
    else:
        factory = lambda b, role: sessions[role]  # noqa: E731
    opened: Dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        try:
            for role in roles:
                session = factory(bundle, role)
                if not session.active:
                    stack.enter_context(session)
                opened[role] = session
        except (EdgevidError, KeyError) as e:
            raise ExportError("cannot open the %s graphs of %s" % (backend, bundle.root), str(e),
                              "check the backend is installed and the bundle is complete") from e
        yield opened


def used(sessions: Dict[str, Any]) -> Dict[str, Any]:
    """The report entries saying what actually ran: ``backend`` (one name, or names joined by +) and per role
    its backend, precision and file."""
    from ..backends.registry import backend_names

    per_role = {role: s.describe() for role, s in sessions.items()}
    return {"backend": backend_names(per_role), "sessions": per_role}


def infer(sessions, role: str, feeds: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    try:
        out = sessions[role].infer(feeds)
    except EdgevidError as e:
        raise ExportError("graph %s failed during verification" % role, str(e),
                          "check the bundle matches the model") from e
    return {k: np.array(v, dtype=np.float32, copy=True) for k, v in out.items()}  # outputs may be reused buffers


def error_measures(ref: np.ndarray, got: np.ndarray):
    """max-abs and min row-wise cosine of two [rows, …] arrays."""
    ref = ref.reshape(ref.shape[0], -1).astype(np.float64)
    got = got.reshape(got.shape[0], -1).astype(np.float64)
    max_abs = float(np.abs(ref - got).max()) if ref.size else 0.0
    cos = row_cosines(ref, got)
    return max_abs, float(cos.min()) if cos.size else 1.0


def output_report(ref, got, atol, min_cos) -> Dict[str, Any]:
    max_abs, cos = error_measures(ref, got)
    return {"max_abs": max_abs, "min_cosine": cos, "ref_max_abs": float(np.abs(ref).max()), "calls": int(ref.shape[0]),
            "ok": bool(max_abs <= atol and cos >= min_cos)}


def steps_report(pairs: Dict[str, List], atol, min_cos) -> Dict[str, Any]:
    outputs = {}
    for name, (ref, got) in pairs.items():
        max_abs, cos = error_measures(np.concatenate(ref), np.concatenate(got))
        outputs[name] = {"max_abs": max_abs, "min_cosine": cos}
    max_abs = max(o["max_abs"] for o in outputs.values())
    cos = min(o["min_cosine"] for o in outputs.values())
    return {"max_abs": max_abs, "min_cosine": cos, "calls": len(next(iter(pairs.values()))[0]), "outputs": outputs,
            "ok": bool(max_abs <= atol and cos >= min_cos)}


def preprocess_frames(bundle, frames, size: int) -> np.ndarray:
    """Decoded BGR frames (a list or [F,H,W,3] uint8) through the bundle's preprocessing, or already preprocessed
    frames, as float32 [F,3,S,S] at ``size``; ExportError for anything else."""
    if isinstance(frames, np.ndarray) and frames.dtype == np.uint8 and frames.ndim == 4 and frames.shape[-1] == 3:
        frames = list(frames)
    if isinstance(frames, (list, tuple)):
        if not frames:
            raise ExportError("no frames to verify with", None, "pass at least one frame")
        from ..preprocess import Preprocessor
        try:
            pre = Preprocessor(bundle.preprocess)
            return np.concatenate([pre(f)[size].copy() for f in frames])  # outputs are reused buffers
        except (EdgevidError, KeyError) as e:
            raise ExportError("cannot preprocess the frames for verification", str(e),
                              "pass decoded BGR uint8 frames (H×W×3) and a bundle that preprocesses to %d" % size) from e
    x = np.ascontiguousarray(as_numpy(frames), dtype=np.float32)
    if x.ndim != 4 or x.shape[1:] != (3, size, size) or x.shape[0] == 0:
        raise ExportError("preprocessed frames of shape %s" % (x.shape,), None,
                          "pass [F,3,%d,%d] float32 frames with F >= 1, or decoded BGR frames" % (size, size))
    return x
