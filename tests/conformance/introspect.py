"""Dump the public API of imported modules as JSON, for the conformance checker (tests/conformance/apicheck.py).

Run in a subprocess over the stub libraries (the bindings cannot be imported into the test process: each
TensorRT version is its own ``tensorrt_bindings`` package, and the stubs need LD_LIBRARY_PATH):

    LD_LIBRARY_PATH=STUBS PYTHONPATH=DIR python introspect.py tensorrt=tensorrt_bindings
    LD_LIBRARY_PATH=STUBS venv/bin/python introspect.py pycuda.driver pycuda.gpuarray

Each argument is ``NAME`` or ``NAME=IMPORT`` (the name the project's code uses, the module to import).
Output: {NAME: {"version", "error", "names": {name: ENTRY}}}; ENTRY is {"kind": "class"|"function"|
"value"|"module", "params": [[names] per overload] or null, "returns": [type names] , "members": {..}}
(members for classes only, nested classes one level deep). Parameter names and return types come from
the signature lines pybind11 and Boost.Python put at the top of ``__doc__``, or from ``inspect`` for
functions written in Python. Only reading happens here: nothing is called.
"""
from __future__ import annotations

import importlib
import inspect
import json
import re
import sys

# pybind11: "name(self: T, a: int, b: int = 0) -> R" (overloads numbered "1. name(...) -> R"; R may be a
# C++ name such as nvinfer1::TensorIOMode)
# Boost.Python: "name( (T)arg1, (object)dest [, (object)stream=None]) -> R :"
SIGNATURE = re.compile(r"^\s*(?:\d+\.\s+)?(?P<name>[A-Za-z_]\w*)\((?P<args>.*)\)\s*->\s*(?P<ret>[\w.:\[\], ]+?)\s*:?\s*$")
BOOST_ARG = re.compile(r"\((?:[\w.]+)\)\s*(?P<name>\w+)")


def split_top(text: str):
    """Split a parameter list on the commas that are not inside brackets or angle brackets."""
    depth, part, parts = 0, "", []
    for ch in text:
        if ch in "([{<":
            depth += 1
        elif ch in ")]}>":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(part)
            part = ""
        else:
            part += ch
    if part.strip():
        parts.append(part)
    return parts


def parameters(args: str):
    """Argument names of one signature line, 'self' and the pybind11 'arg0' placeholders included."""
    if "(" in args and BOOST_ARG.search(args):
        return [m.group("name") for m in BOOST_ARG.finditer(args)]
    names = []
    for part in split_top(args):
        name = re.split(r"[:=]", part.strip().lstrip("*"), maxsplit=1)[0].strip()
        if part.strip().startswith("**"):
            name = "**"  # takes any keyword
        names.append(name)
    return names


def signatures(obj, name: str):
    """(params per overload, return type names) from __doc__ signature lines, else from inspect."""
    doc = getattr(obj, "__doc__", None) or ""
    params, returns = [], []
    for line in doc.splitlines():
        m = SIGNATURE.match(line)
        if m and m.group("name") == name and "*args, **kwargs" not in m.group("args"):
            params.append(parameters(m.group("args")))
            returns.append(re.split(r"\.|::", m.group("ret").strip())[-1])  # nvinfer1::TensorIOMode
    if params:
        return params, returns
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None, []
    names = ["**" if p.kind is p.VAR_KEYWORD else p.name for p in sig.parameters.values()]
    return [names], []


def describe(obj, name: str, owner=None, depth: int = 0):
    if inspect.ismodule(obj):
        return {"kind": "module"}
    if inspect.isclass(obj):
        entry = {"kind": "class", "members": {}}
        init = signatures(getattr(obj, "__init__", None), "__init__")[0]
        entry["params"] = init
        for m in dir(obj):
            if m.startswith("__"):
                continue
            try:
                value = inspect.getattr_static(obj, m)
            except AttributeError:
                continue
            if depth == 0 and inspect.isclass(getattr(obj, m, None)):
                entry["members"][m] = describe(getattr(obj, m), m, obj, depth + 1)
            else:
                entry["members"][m] = describe_member(obj, m, value)
        return entry
    if callable(obj):
        params, returns = signatures(obj, name)
        return {"kind": "function", "params": params, "returns": returns}
    return {"kind": "value"}


def describe_member(cls, name: str, static):
    if isinstance(static, property):
        return {"kind": "property", "returns": signatures(static.fget, "")[1] or property_type(static)}
    value = getattr(cls, name, None)
    if isinstance(value, cls):
        return {"kind": "value"}  # an enum member (pybind11 enums are instances of their class)
    if callable(value):
        params, returns = signatures(value, name)
        return {"kind": "function", "params": params, "returns": returns}
    return {"kind": "value"}


def property_type(prop):
    """A pybind11 property's getter documents itself as '(arg0: T) -> R'."""
    m = re.search(r"->\s*([\w.]+)", (getattr(prop.fget, "__doc__", None) or "").split("\n", 1)[0])
    return [m.group(1).split(".")[-1]] if m else []


def dump(spec: str):
    name, _, target = spec.partition("=")
    try:
        module = importlib.import_module(target or name)
    except Exception as e:  # any import failure is the answer for this module, reported by the checker
        return name, {"version": None, "error": "%s: %s" % (type(e).__name__, e), "names": {}}
    version = getattr(module, "__version__", None) or getattr(module, "VERSION_TEXT", None)
    top = sys.modules.get((target or name).split(".")[0])
    version = version or getattr(top, "VERSION_TEXT", None) or getattr(top, "__version__", None)
    names = {n: describe(getattr(module, n), n) for n in dir(module) if not n.startswith("_")}
    return name, {"version": str(version), "error": None, "names": names}


if __name__ == "__main__":
    json.dump(dict(dump(a) for a in sys.argv[1:]), sys.stdout)
