"""Check the project's use of TensorRT and pycuda against the real APIs of the versions it supports.

``find_uses(source, path, modules, api)`` reads one module with ``ast`` and returns every use of the
watched modules (``tensorrt``, ``pycuda.*``), however they are imported: ``import tensorrt as trt``,
``import pycuda.driver as cuda``, ``from tensorrt import Builder``, imports inside functions, and the
lazy ``trt = require("tensorrt")`` / ``importlib.import_module(...)`` forms. A use is one of:

- a chain on the module: ``trt.Builder``, ``trt.BuilderFlag.FP16``, ``cuda.Device(0).retain_primary_context``;
- a member on an object whose class is known: ``engine = runtime.deserialize_cuda_engine(b)`` makes
  ``engine`` an ``ICudaEngine`` (return types come from the bindings' signatures), so ``engine.num_io_tensors``
  is checked against ``ICudaEngine``;
- a member on an object of unknown class whose name is a member of some class of the API in some version
  (``ctx.execute_async_v2``): checked against the classes that have it. Names the file defines itself,
  names of builtin types (``update``, ``get``) and members of bare ``self`` are left out (they are the
  project's own, not TensorRT's).

Keyword arguments of a call are checked against the parameter names of the signatures (any overload).

A use is *guarded* when it sits behind a feature check of the same name: under ``if hasattr(x, "n")`` /
``if getattr(x, "n", None) is not None`` (or after ``if not hasattr(x, "n"): raise/return``), in the
later operands of ``hasattr(x, "n") and x.n``, or in a ``try`` whose handler catches ``AttributeError``.
``getattr(x, "n", default)`` is itself a guarded use. Guarded uses may name what a version lacks.

``check(uses, api, version)`` returns one line per unguarded use the version lacks: file:line, the name,
the version, and what the version has instead when it has a near name.
"""
from __future__ import annotations

import ast
import builtins
import difflib
import io
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Set, Tuple

# the modules whose use is checked; a submodule imported as ``pycuda.driver`` is its own API
WATCHED = ("tensorrt", "pycuda")
# member names of builtin types: an unknown object calling them is not taken for a TensorRT object
BUILTIN_NAMES = {n for t in (dict, list, set, str, bytes, tuple, int, float, object, type, frozenset,
                               io.BufferedReader, io.TextIOWrapper) for n in dir(t)} | set(dir(builtins))
FOREIGN = ("", "")   # the type of what a builtin returns: known not to be an object of a watched API
LAZY_IMPORTERS = {"require", "import_module", "_require", "__import__"}


@dataclass
class Use:
    path: str
    line: int
    module: str                  # "tensorrt", "pycuda.driver"
    chain: Tuple[str, ...]       # names from the module down, or (Class, member) for a member use
    resolved: bool = True        # False: the class was inferred from the member name alone
    keywords: Tuple[str, ...] = ()
    guarded: Set[str] = field(default_factory=set)   # names feature-checked around the use; "*" = all

    def where(self) -> str:
        return "%s:%d" % (self.path, self.line)


# ---------------------------------------------------------------- imports and aliases

def watched(name: str) -> bool:
    return name.split(".")[0] in WATCHED


def dotted(node: ast.AST) -> Optional[str]:
    """'a.b.c' for a Name/Attribute chain, else None (ast.unparse is 3.9+)."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id] + parts[::-1])
    return None


def lazy_import(value: ast.AST) -> Optional[str]:
    """'tensorrt' for ``require("tensorrt", ...)`` / ``importlib.import_module("tensorrt")``."""
    if not isinstance(value, ast.Call) or not value.args:
        return None
    func = value.func.attr if isinstance(value.func, ast.Attribute) else getattr(value.func, "id", None)
    arg = value.args[0]
    if func in LAZY_IMPORTERS and isinstance(arg, ast.Constant) and isinstance(arg.value, str) and watched(arg.value):
        return arg.value
    return None


def aliases(tree: ast.AST) -> Dict[str, Tuple[str, Tuple[str, ...]]]:
    """Local name -> (module, names below it): ``trt`` -> ("tensorrt", ()), ``Builder`` -> ("tensorrt", ("Builder",))."""
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if watched(a.name):
                    # ``import pycuda.driver`` binds ``pycuda``; ``import pycuda.driver as cuda`` binds the submodule
                    found[a.asname] = (a.name, ()) if a.asname else None
                    if not a.asname:
                        found[a.name.split(".")[0]] = (a.name.split(".")[0], ())
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level and watched(node.module):
            for a in node.names:
                found[a.asname or a.name] = (node.module, (a.name,))
        elif isinstance(node, ast.Assign) and lazy_import(node.value):
            for target in node.targets:
                key = dotted(target)
                if key:
                    found[key] = (lazy_import(node.value), ())
    found.pop(None, None)
    return {k: v for k, v in found.items() if v}


def split_module(module: str, names: Tuple[str, ...], api: Dict[str, dict]) -> Tuple[str, Tuple[str, ...]]:
    """``pycuda`` + (driver, Stream) -> ``pycuda.driver`` + (Stream,) when that submodule is an API we have."""
    while names and module + "." + names[0] in api:
        module, names = module + "." + names[0], names[1:]
    return module, names


# ---------------------------------------------------------------- guards

def _feature_name(call: ast.AST) -> Optional[str]:
    """'n' for hasattr(x, "n") or getattr(x, "n", default)."""
    if (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id in ("hasattr", "getattr")
            and len(call.args) >= 2 and isinstance(call.args[1], ast.Constant) and isinstance(call.args[1].value, str)):
        if call.func.id == "hasattr" or len(call.args) == 3:
            return call.args[1].value
    return None


def checks(test: ast.AST) -> Tuple[Set[str], Set[str]]:
    """Names known present when ``test`` is true, and names known present when it is false."""
    name = _feature_name(test)
    if name:
        return {name}, set()
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        yes, no = checks(test.operand)
        return no, yes
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.comparators[0], ast.Constant) \
            and test.comparators[0].value is None and _feature_name(test.left):
        n = {_feature_name(test.left)}
        return (n, set()) if isinstance(test.ops[0], ast.IsNot) else (set(), n)
    if isinstance(test, ast.BoolOp):
        parts = [checks(v) for v in test.values]
        if isinstance(test.op, ast.And):
            return set().union(*(p[0] for p in parts)), set()
        return set(), set().union(*(p[1] for p in parts))
    return set(), set()


def _exits(body: List[ast.stmt]) -> bool:
    return bool(body) and isinstance(body[-1], (ast.Raise, ast.Return, ast.Continue, ast.Break))


def _catches_attribute_error(handler: ast.ExceptHandler) -> bool:
    names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(n, ast.Name) and n.id == "AttributeError" for n in names)


class Guards:
    """The feature-checked names in force at each node of a tree (computed once, top down)."""

    def __init__(self, tree: ast.AST):
        self.at: Dict[int, Set[str]] = {}
        self._visit(tree, set())

    def _visit(self, node: ast.AST, active: Set[str]) -> None:
        self.at[id(node)] = active
        if isinstance(node, (ast.If, ast.IfExp, ast.While)):
            yes, no = checks(node.test)
            self._visit(node.test, active)
            self._visit_any(node.body, active | yes)
            self._visit_any(node.orelse, active | no)
            return
        if isinstance(node, ast.Try):
            caught = any(_catches_attribute_error(h) for h in node.handlers)
            self._visit_block(node.body, active | ({"*"} if caught else set()))
            for child in node.handlers:
                self._visit(child, active)
            self._visit_block(node.orelse, active)
            self._visit_block(node.finalbody, active)
            return
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
            seen = set(active)
            for value in node.values:
                self._visit(value, seen)
                seen = seen | checks(value)[0]
            return
        for _field, value in ast.iter_fields(node):
            if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
                self._visit_block(value, active)
            elif isinstance(value, list):
                for child in value:
                    if isinstance(child, ast.AST):
                        self._visit(child, active)
            elif isinstance(value, ast.AST):
                self._visit(value, active)

    def _visit_any(self, body, active: Set[str]) -> None:
        if isinstance(body, list):
            self._visit_block(body, active)
        else:
            self._visit(body, active)

    def _visit_block(self, body: List[ast.stmt], active: Set[str]) -> None:
        for stmt in body:
            self._visit(stmt, active)
            # ``if not hasattr(x, "n"): raise ...`` guards what follows in the same block
            if isinstance(stmt, ast.If) and _exits(stmt.body) and not stmt.orelse:
                active = active | checks(stmt.test)[1]


# ---------------------------------------------------------------- API lookups

def members_in(api: dict, cls: str) -> Optional[dict]:
    entry = lookup(api, (cls,))
    return entry.get("members") if entry and entry.get("kind") == "class" else None


def lookup(api: dict, chain: Tuple[str, ...]) -> Optional[dict]:
    """The API entry of a chain of names below a module, or None where a link is missing."""
    entry = {"kind": "module", "members": api.get("names", {})}
    for name in chain:
        members = entry.get("members")
        if members is None:
            return {"kind": "unknown"}  # below a value or function: not ours to check
        entry = members.get(name)
        if entry is None:
            return None
    return entry


def classes_with(apis: Iterable[dict], member: str) -> Set[str]:
    """Classes that have ``member`` in any of the given APIs (nested classes as 'Outer.Inner')."""
    found = set()
    for api in apis:
        for cls, entry in api.get("names", {}).items():
            if entry.get("kind") == "class" and member in entry.get("members", {}):
                found.add(cls)
    return found


def returns(apis: Iterable[dict], chain: Tuple[str, ...]) -> Optional[str]:
    """The class a call of ``chain`` returns (a constructor returns its class), in the first API that says."""
    for api in apis:
        entry = lookup(api, chain)
        if not entry:
            continue
        if entry.get("kind") == "class":
            return chain[-1]
        for r in entry.get("returns") or []:
            if r in api.get("names", {}) and api["names"][r].get("kind") == "class":
                return r
    return None


# ---------------------------------------------------------------- finding uses

class _Scan:
    def __init__(self, tree: ast.AST, path: str, apis: Dict[str, dict]):
        self.path, self.apis, self.tree = path, apis, tree
        self.alias = {k: split_module(m, n, apis) for k, (m, n) in aliases(tree).items()}
        self.types: Dict[str, Tuple[str, str]] = {}   # dotted variable -> (module, class)
        self.guards = Guards(tree)
        self.own = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
        self.uses: List[Use] = []

    def module_chain(self, node: ast.AST) -> Optional[Tuple[str, Tuple[str, ...]]]:
        """(module, names) when ``node`` is a chain on an alias (longest alias first: ``self._trt``)."""
        text = dotted(node)
        if not text:
            return None
        parts = text.split(".")
        for i in range(len(parts), 0, -1):
            key = ".".join(parts[:i])
            if key in self.alias:
                module, names = self.alias[key]
                return split_module(module, names + tuple(parts[i:]), self.apis)
        return None

    def type_of(self, node: ast.AST) -> Optional[Tuple[str, str]]:
        if isinstance(node, ast.Call):
            return self.call_type(node)
        text = dotted(node)
        return self.types.get(text) if text else None

    def call_type(self, call: ast.Call) -> Optional[Tuple[str, str]]:
        if isinstance(call.func, ast.Name) and call.func.id in dir(builtins) and call.func.id not in self.alias:
            return FOREIGN  # open(), list(), ...: not a TensorRT object
        chain = self.module_chain(call.func)
        if chain and chain[1]:
            r = returns(self._apis(chain[0]), chain[1])
            return (chain[0], r) if r else None
        if isinstance(call.func, ast.Attribute):
            owner = self.type_of(call.func.value)
            if owner:
                r = returns(self._apis(owner[0]), (owner[1], call.func.attr))
                return (owner[0], r) if r else None
        return None

    def _apis(self, module: str) -> List[dict]:
        return [a[module] for a in self.apis.values() if module in a] if self.apis else []

    def infer_types(self) -> None:
        """Assignments and ``with ... as`` bind variables to classes; two passes settle most orders."""
        for _ in range(2):
            for node in ast.walk(self.tree):
                pairs = []
                if isinstance(node, ast.Assign):
                    pairs = [(t, node.value) for t in node.targets]
                elif isinstance(node, (ast.With, ast.AsyncWith)):
                    pairs = [(i.optional_vars, i.context_expr) for i in node.items if i.optional_vars is not None]
                for target, value in pairs:
                    key, kind = dotted(target), self.type_of(value)
                    if key and kind and key not in self.alias:
                        self.types[key] = kind

    def collect(self) -> List[Use]:
        self.infer_types()
        for node in ast.walk(self.tree):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level and watched(node.module):
                module, _ = split_module(node.module, (), self.apis)
                for a in node.names:
                    if a.name != "*":
                        self.add(node, module, split_module(node.module, (a.name,), self.apis)[1])
            elif isinstance(node, ast.Attribute):
                self.attribute(node)
            elif isinstance(node, ast.Call) and _feature_name(node) is None and isinstance(node.func, ast.Name) \
                    and node.func.id == "getattr" and len(node.args) == 2 and isinstance(node.args[1], ast.Constant):
                self.member(node, node.args[0], str(node.args[1].value))  # getattr(x, "n") raises like x.n
        return self.uses

    def attribute(self, node: ast.Attribute) -> None:
        chain = self.module_chain(node)
        if chain is None:
            self.member(node, node.value, node.attr)
            return
        if isinstance(node.value, ast.Attribute):
            node.value._inner = True  # a chain on an alias is one use, reported whole (ast.walk: outer first)
        if chain[1] and not getattr(node, "_inner", False):
            self.add(node, chain[0], chain[1], keywords=self.keywords(node))

    def member(self, node: ast.AST, receiver: ast.AST, name: str) -> None:
        chain = self.module_chain(receiver)
        if chain is not None:  # getattr(trt.BuilderFlag, "FP16")
            self.add(node, chain[0], chain[1] + (name,), keywords=self.keywords(node))
            return
        owner = self.type_of(receiver)
        if owner == FOREIGN:
            return
        if owner:
            self.add(node, owner[0], (owner[1], name), keywords=self.keywords(node))
            return
        if name in BUILTIN_NAMES or name in self.own or (isinstance(receiver, ast.Name) and receiver.id in ("self", "cls")):
            return
        for module in sorted({m for a in self.apis.values() for m in a}):
            if any(m == module or m.startswith(module.split(".")[0]) for m, _ in self.alias.values()):
                candidates = classes_with(self._apis(module), name)
                if candidates:
                    self.add(node, module, ("|".join(sorted(candidates)), name), resolved=False,
                             keywords=self.keywords(node))

    def keywords(self, node: ast.AST) -> Tuple[str, ...]:
        call = getattr(node, "_call", None)
        return tuple(k.arg for k in call.keywords if k.arg) if call else ()

    def add(self, node: ast.AST, module: str, chain: Tuple[str, ...], resolved: bool = True,
            keywords: Tuple[str, ...] = ()) -> None:
        self.uses.append(Use(self.path, getattr(node, "lineno", 0), module, chain, resolved, keywords,
                             self.guards.at.get(id(node), set())))


def find_uses(source: str, path: str, apis: Dict[str, Dict[str, dict]]) -> List[Use]:
    """Uses of the watched modules in one source file. ``apis``: version -> {module: dump} (for types)."""
    tree = ast.parse(source, filename=path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            node.func._call = node  # the call an attribute is the callee of (for its keyword arguments)
    scan = _Scan(tree, path, apis)
    if not scan.alias and not any(isinstance(n, ast.Import) and any(watched(a.name) for a in n.names)
                                  for n in ast.walk(tree)):
        return []
    return scan.collect()


# ---------------------------------------------------------------- checking

def check(uses: Iterable[Use], api: Dict[str, dict], version: str) -> List[str]:
    """Problems of ``uses`` against one version's dumps ({module: dump}), one line each."""
    problems = []
    for use in uses:
        dump = api.get(use.module)
        if dump is None:
            continue  # another module's use: checked against that module's versions
        problem = _missing(use, dump) or _bad_keywords(use, dump)
        if problem and not ({"*", problem[0]} & use.guarded):
            problems.append("%s: %s %s: %s%s" % (use.where(), use.module, version, problem[1],
                                                 "; not behind a feature check (hasattr, getattr with a default, "
                                                 "try/except AttributeError)" if problem[0] else ""))
    return sorted(set(problems))


def _missing(use: Use, dump: dict) -> Optional[Tuple[str, str]]:
    """(missing name, message) when the version lacks a link of the use's chain."""
    if dump.get("error"):
        return "", "%s.%s is used but %s does not import: %s" % (use.module, ".".join(use.chain), use.module,
                                                                   dump["error"])
    if not use.resolved:
        classes, name = use.chain
        have = [c for c in classes.split("|") if name in (members_in(dump, c) or {})]
        if have:
            return None
        return name, "'.%s' is a member of %s in other versions but of no class here" % (name, classes.replace("|", "/"))
    for i in range(len(use.chain)):
        if lookup(dump, use.chain[:i + 1]) is None:
            name = use.chain[i]
            where = lookup(dump, use.chain[:i])
            near = difflib.get_close_matches(name, list((where or {}).get("members") or {}), n=2)
            hint = "; it has %s" % ", ".join(near) if near else ""
            return name, "%s.%s does not exist%s" % (use.module, ".".join(use.chain[:i + 1]), hint)
    return None


def _bad_keywords(use: Use, dump: dict) -> Optional[Tuple[str, str]]:
    if not use.keywords:
        return None
    if use.resolved:
        entries = [lookup(dump, use.chain)]
    else:
        classes, name = use.chain
        entries = [lookup(dump, (c, name)) for c in classes.split("|")]
    overloads = [p for e in entries if e for p in (e.get("params") or [])]
    if not overloads or any("**" in p for p in overloads):
        return None  # nothing documented, or it takes any keyword
    bad = [k for k in use.keywords if not any(k in p for p in overloads)]
    if not bad:
        return None
    known = sorted({n for p in overloads for n in p if n != "self"})
    return bad[0], "%s.%s has no argument %s (its arguments: %s)" % (
        use.module, ".".join(use.chain).replace("|", "/"), ", ".join(repr(b) for b in bad), ", ".join(known))
