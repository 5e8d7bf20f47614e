"""Check the project's use of TensorRT and pycuda against the real APIs of the versions it supports.

``find_uses(source, path, apis, project(sources))`` reads one module with ``ast`` and returns every use of
the watched modules (``tensorrt``, ``pycuda.*``), however they are imported: ``import tensorrt as trt``,
``import pycuda.driver as cuda``, ``from tensorrt import Builder``, imports inside functions, the lazy
``trt = require("tensorrt")`` / ``importlib.import_module(...)`` forms, helpers returning the module
(``def tensorrt(): return require(...)``), and the module passed on under the name the project binds it
to (``def make_engine(trt, ...)``; :class:`Project`). A use is one of:

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


def _callee(call: ast.AST) -> Optional[str]:
    """'tensorrt' for ``tensorrt()`` and ``trt_backend.tensorrt()``: the name a call calls."""
    if not isinstance(call, ast.Call):
        return None
    return call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", None)


def providers(tree: ast.AST) -> Dict[str, str]:
    """Functions that return a watched module: ``def tensorrt(): return require("tensorrt")`` -> {"tensorrt": ...}.
    The house style imports TensorRT and pycuda through such helpers, so their calls are the module."""
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            local = {k: m for k, (m, n) in aliases(node).items() if not n}
            for ret in (r for r in ast.walk(node) if isinstance(r, ast.Return) and r.value is not None):
                module = lazy_import(ret.value) or local.get(dotted(ret.value) or "")
                if module:
                    found[node.name] = module
    return found


def defined_names(tree: ast.AST) -> Set[str]:
    """Names a file gives meaning to itself: functions, classes, attributes of self, class fields. An object
    of unknown class using one of them is taken for the project's own (``plan.precision``, ``buffer.free()``)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            if isinstance(node, ast.ClassDef):
                for stmt in node.body:
                    targets = stmt.targets if isinstance(stmt, ast.Assign) else [getattr(stmt, "target", None)]
                    names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) \
                and isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            names.add(node.attr)  # self.x = ...: the project's attribute (config.x = ... sets the API's)
    return names


@dataclass
class Project:
    """What one file cannot tell by itself, read from every file of the project."""

    provided: Dict[str, str] = field(default_factory=dict)   # helper function -> module it returns
    own: Set[str] = field(default_factory=set)               # names the project defines (defined_names)
    modules: Dict[str, str] = field(default_factory=dict)    # plain name bound to a module somewhere: trt, cuda


def project(sources: Iterable[Tuple[str, str]]) -> Project:
    """The :class:`Project` of (path, text) pairs: the house style passes ``trt`` from function to function
    (``def make_engine(trt, ...)``), so a name bound to TensorRT in one file is TensorRT in the others."""
    result = Project()
    trees = [ast.parse(text) for _, text in sources]
    for tree in trees:
        result.provided.update(providers(tree))
        result.own |= defined_names(tree)
    for tree in trees:
        for name, (module, names) in aliases(tree, result.provided).items():
            if not names and "." not in name:
                result.modules.setdefault(name, module)
    return result


def bound_elsewhere(tree: ast.AST) -> Set[str]:
    """Names a file imports from somewhere not watched (``from . import cuda``): never a project-wide alias."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update((a.asname or a.name).split(".")[0] for a in node.names if not watched(a.name))
        elif isinstance(node, ast.ImportFrom) and not (node.module and not node.level and watched(node.module)):
            names.update(a.asname or a.name for a in node.names)
    return names


def aliases(tree: ast.AST, provided: Optional[Dict[str, str]] = None) -> Dict[str, Tuple[str, Tuple[str, ...]]]:
    """Local name -> (module, names below it): ``trt`` -> ("tensorrt", ()), ``Builder`` -> ("tensorrt", ("Builder",)).
    ``provided``: helper function name -> module (``trt = tensorrt()``)."""
    provided = provided or {}
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
        elif isinstance(node, ast.Assign) and (lazy_import(node.value) or _callee(node.value) in provided):
            module = lazy_import(node.value) or provided[_callee(node.value)]
            for target in node.targets:
                key = dotted(target)
                if key:
                    found[key] = (module, ())
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
    def __init__(self, tree: ast.AST, path: str, apis: Dict[str, dict], context: Project):
        self.path, self.apis, self.tree = path, apis, tree
        self.provided = dict(context.provided, **providers(tree))
        self.alias = self._aliases(context)
        self.families = self._families()
        self.guards = Guards(tree)
        self.own = defined_names(tree) | context.own
        self.scope = self._scopes()
        self.types: Dict[str, Tuple[str, str]] = {}       # variable (type_key) -> (module, class)
        self.func_types: Dict[str, Tuple[str, str]] = {}  # function of this file -> the class it returns
        self.ambiguous: Set[str] = set()
        self.uses: List[Use] = []

    def _aliases(self, context: Project) -> Dict[str, Tuple[str, Tuple[str, ...]]]:
        found = {k: (m, ()) for k, m in context.modules.items() if k not in bound_elsewhere(self.tree)}
        found.update(aliases(self.tree, self.provided))
        self.alias = {k: split_module(m, n, self.apis) for k, (m, n) in found.items()}
        for node in ast.walk(self.tree):  # kinds = trt.NetworkDefinitionCreationFlag: a name for an API class
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Attribute):
                chain = self.module_chain(node.value)
                if chain and chain[1] and self._is_class(chain):
                    self.alias.update({k: chain for k in map(dotted, node.targets) if k})
        return self.alias

    def _families(self) -> Set[str]:
        """The watched packages this file uses: only their member names are matched on unknown objects."""
        nodes = list(ast.walk(self.tree))
        names = {n.id for n in nodes if isinstance(n, ast.Name)}
        used = {m for k, (m, _) in self.alias.items() if k.split(".")[0] in names}
        used |= {self.provided[c] for c in {_callee(n) for n in nodes} & set(self.provided)}
        used |= {a.name for n in nodes if isinstance(n, ast.Import) for a in n.names if watched(a.name)}
        used |= {n.module for n in nodes if isinstance(n, ast.ImportFrom) and n.module and watched(n.module)}
        return {m.split(".")[0] for m in used}

    def _scopes(self) -> Dict[int, int]:
        """id(node) -> the innermost function around it (plain names are typed per function)."""
        scope = {}
        for func in ast.walk(self.tree):
            if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                for node in ast.walk(func):
                    scope[id(node)] = id(func)  # ast.walk visits outer functions first: the innermost wins
        return scope

    def module_chain(self, node: ast.AST) -> Optional[Tuple[str, Tuple[str, ...]]]:
        """(module, names) when ``node`` is a chain on an alias (longest alias first: ``self._trt``) or on a
        call of a module-returning helper (``driver().Device``)."""
        below, base = [], node
        while isinstance(base, ast.Attribute):
            below.append(base.attr)
            base = base.value
        if _callee(base) in self.provided:
            return split_module(self.provided[_callee(base)], tuple(below[::-1]), self.apis)
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

    def type_key(self, node: ast.AST) -> Optional[str]:
        """A variable's key: ``ctx`` in two functions is two variables; ``self._engine`` is one per file."""
        text = dotted(node)
        if text and isinstance(node, ast.Name):
            return "%s:%s" % (self.scope.get(id(node), "module"), text)
        return text

    def type_of(self, node: ast.AST) -> Optional[Tuple[str, str]]:
        if isinstance(node, ast.Call):
            return self.call_type(node)
        key = self.type_key(node)
        if key is None or key in self.ambiguous:
            return None
        if key in self.types or not isinstance(node, ast.Name):
            return self.types.get(key)
        return self.types.get("module:" + node.id)  # a global read inside a function

    def call_type(self, call: ast.Call) -> Optional[Tuple[str, str]]:
        if isinstance(call.func, ast.Name) and call.func.id in dir(builtins) and call.func.id not in self.alias:
            return FOREIGN  # open(), list(), ...: not a TensorRT object
        chain = self.module_chain(call.func)
        if chain and chain[1] and not self._apis(chain[0]):
            return FOREIGN  # an object of a watched module not checked here (pycuda while checking TensorRT)
        if chain and chain[1]:
            r = returns(self._apis(chain[0]), chain[1])
            return (chain[0], r) if r else None
        if isinstance(call.func, ast.Attribute):
            owner = self.type_of(call.func.value)
            if owner and owner != FOREIGN:
                r = returns(self._apis(owner[0]), (owner[1], call.func.attr))
                return (owner[0], r) if r else None
        return self.func_types.get(_callee(call) or "")  # a function of this file: self._deserialize(trt)

    def _is_class(self, chain: Tuple[str, Tuple[str, ...]]) -> bool:
        entries = [lookup(a, chain[1]) for a in self._apis(chain[0])]
        return any(e and e.get("kind") == "class" for e in entries)

    def _apis(self, module: str) -> List[dict]:
        return [a[module] for a in self.apis.values() if module in a] if self.apis else []

    def infer_types(self) -> None:
        """Assignments and ``with ... as`` bind variables to classes, and a function of the file returning one
        has its type; three passes settle most orders."""
        for _ in range(3):
            for node in ast.walk(self.tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    kinds = {self.type_of(r.value) for r in ast.walk(node) if isinstance(r, ast.Return) and r.value}
                    kinds.discard(None)
                    if len(kinds) == 1 and FOREIGN not in kinds:
                        self.func_types[node.name] = kinds.pop()
                pairs = []
                if isinstance(node, ast.Assign):
                    pairs = [(t, node.value) for t in node.targets]
                elif isinstance(node, (ast.With, ast.AsyncWith)):
                    pairs = [(i.optional_vars, i.context_expr) for i in node.items if i.optional_vars is not None]
                for target, value in pairs:
                    key, kind = self.type_key(target), self.type_of(value)
                    if not key or not kind or dotted(target) in self.alias:
                        continue
                    if self.types.get(key, kind) != kind:
                        self.ambiguous.add(key)  # bound to two classes: trust neither
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
        found = {}
        for module in sorted({m for a in self.apis.values() for m in a}):
            if module.split(".")[0] in self.families:
                candidates = classes_with(self._apis(module), name)
                if candidates:
                    found[module] = candidates
        if len({m.split(".")[0] for m in found}) > 1:
            return  # a member of TensorRT and of pycuda classes (free, synchronize): cannot tell whose
        for module, candidates in found.items():
            self.add(node, module, ("|".join(sorted(candidates)), name), resolved=False, keywords=self.keywords(node))

    def keywords(self, node: ast.AST) -> Tuple[str, ...]:
        call = getattr(node, "_call", None)
        return tuple(k.arg for k in call.keywords if k.arg) if call else ()

    def add(self, node: ast.AST, module: str, chain: Tuple[str, ...], resolved: bool = True,
            keywords: Tuple[str, ...] = ()) -> None:
        self.uses.append(Use(self.path, getattr(node, "lineno", 0), module, chain, resolved, keywords,
                             self.guards.at.get(id(node), set())))


def find_uses(source: str, path: str, apis: Dict[str, Dict[str, dict]],
              context: Optional[Project] = None) -> List[Use]:
    """Uses of the watched modules in one source file. ``apis``: version -> {module: dump} (for types);
    ``context``: what the other files of the project say (:func:`project`)."""
    tree = ast.parse(source, filename=path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            node.func._call = node  # the call an attribute is the callee of (for its keyword arguments)
    scan = _Scan(tree, path, apis, context or Project())
    if not scan.families:
        return []
    return scan.collect()


# ---------------------------------------------------------------- checking

def check(uses: Iterable[Use], api: Dict[str, dict], version: str) -> List[str]:
    """Problems of ``uses`` against one version's dumps ({module: dump}), one line each."""
    problems = set()
    for use in uses:
        dump = api.get(use.module)
        if dump is None:
            continue  # another module's use: checked against that module's versions
        problem = _missing(use, dump) or _bad_keywords(use, dump)
        if problem and not ({"*", problem[0]} & use.guarded):
            problems.add((use.path, use.line, "%s: %s %s: %s%s" % (
                use.where(), use.module, version, problem[1],
                "; not behind a feature check (hasattr, getattr with a default, try/except AttributeError)"
                if problem[0] else "")))
    return [text for _, _, text in sorted(problems)]


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
        if use.chain[i].startswith("__"):
            return None  # __version__, __class__: Python's, not the API's (the dumps leave them out)
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
