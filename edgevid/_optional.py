"""Optional heavy dependencies, imported only when a function needs them.

``require("onnxruntime")`` returns the module or raises :class:`DependencyError` naming what to
install. Nothing here imports a heavy package at module import time.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType

from .errors import DependencyError

# module -> (pip extra of edgevid that provides it, note for Jetson)
_PROVIDERS = {
    "torch": ("export", "on a Jetson install NVIDIA's PyTorch wheel for your JetPack"),
    "torchvision": ("export", "on a Jetson build torchvision against NVIDIA's PyTorch"),
    "onnx": ("export", None),
    "onnxsim": ("export", None),
    "onnxruntime": ("cpu", "on a Jetson use onnxruntime-gpu from the Jetson Zoo or the trt backend"),
    "cv2": ("video", "on a Jetson use JetPack's OpenCV (it has GStreamer): python3-opencv"),
    "tqdm": ("cpu", None),
    "matplotlib": ("export", None),
    "scipy": ("export", None),
    "sklearn": ("export", "the package is scikit-learn"),
    "tensorrt": (None, "TensorRT comes with JetPack (python3-libnvinfer); it is never installed from pip"),
    "pycuda": ("jetson", None),
}


def require(module: str, purpose: str = "") -> ModuleType:
    """Import ``module`` or raise DependencyError that says which extra or package provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        extra, note = _PROVIDERS.get(module.split(".")[0], (None, None))
        fix = []
        if extra:
            fix.append('install it with: pip install "edgevid[%s]"' % extra)
        if note:
            fix.append(note)
        raise DependencyError(
            "%s needs the package '%s'" % (purpose or "this feature", module),
            "it could not be imported (%s)" % e,
            "; ".join(fix) or None,
        ) from e


def available(module: str) -> bool:
    """True when ``module`` can be found, without importing it: asking must not cost the import
    (TensorRT or torch take seconds and initialise devices). A top-level name is looked up by the
    import system's finders only; for ``a.b`` the package ``a`` is imported (Python must run a
    package to find its submodules; if that raises, ``a.b`` is not available), ``a.b`` itself is not.
    A module that is found but fails when imported still counts as available: ``require`` reports
    that failure when it is needed."""
    if module in sys.modules:
        return sys.modules[module] is not None  # None: a blocked import (``sys.modules[name] = None``)
    top = module.partition(".")[0]
    try:
        if importlib.util.find_spec(top) is None:
            return False  # the parent is not there either: do not import anything to ask about its children
        return top == module or importlib.util.find_spec(module) is not None
    except Exception:  # a finder refused (ImportError), a bad name (ValueError), or the parent raised at import
        return False


def lazy_attributes(package: str, table: dict):
    """``__getattr__``/``__dir__`` for a package whose public names live in submodules (PEP 562):
    ``table`` maps name -> relative module; a submodule is imported only when its name is first used."""
    import sys

    def __getattr__(name):
        if name in table:
            value = getattr(importlib.import_module(table[name], package), name)
            setattr(sys.modules[package], name, value)
            return value
        raise AttributeError("module %r has no attribute %r" % (package, name))

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(table))

    return __getattr__, __dir__
