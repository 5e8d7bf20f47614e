"""Imports point one way (docs/architecture.md §2): no module imports a module of a higher layer, and no two
modules import each other. Read from the source with ``ast`` (imports inside functions count too)."""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Set

PACKAGE = Path(__file__).resolve().parents[1] / "edgevid"

# lower number = lower layer; a module may import its own package and lower layers only
RANK = {
    "errors": 0, "log": 0, "_optional": 1, "fsutil": 0, "_version": 0, "onnxfile": 1,
    "spec": 2, "metrics": 2, "families": 3, "bundle": 4, "preprocess": 4,
    "backends": 5, "data": 5, "telemetry": 5, "native": 5,
    "runtime": 6, "models": 6,
    "verify": 7, "quant": 7, "bench": 7, "fusion": 7, "train": 8, "export": 8, "engine_build": 8,
    "demo": 9, "commands": 10, "cli": 11, "__main__": 12, "__init__": 12,
}
# same layer or lower, yet forbidden: the training side never validates through the runtime
FORBIDDEN = {("train", "runtime"), ("export", "runtime"), ("train", "export"), ("export", "train")}


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path) -> Set[str]:
    """Absolute names of the edgevid modules ``path`` imports (``from . import x`` resolved to submodules)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("edgevid"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("edgevid"):
                continue
            for alias in node.names:
                sub = target + "." + alias.name
                found.add(sub if (PACKAGE.parent / (sub.replace(".", "/") + ".py")).exists()
                          or (PACKAGE.parent / sub.replace(".", "/")).is_dir() else target)
    found.discard(name)
    return found


def graph() -> Dict[str, Set[str]]:
    return {module_name(p): imports_of(p) for p in PACKAGE.rglob("*.py")}


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_no_module_imports_a_higher_layer():
    bad = []
    for module, targets in graph().items():
        for target in targets:
            a, b = layer(module), layer(target)
            if a == b:
                continue
            if RANK[b] > RANK[a] or (a, b) in FORBIDDEN:
                bad.append("%s -> %s" % (module, target))
    assert not bad, "imports against the layers:\n" + "\n".join(sorted(bad))


def test_no_two_modules_import_each_other():
    g = graph()
    pairs = sorted({tuple(sorted((a, b))) for a, targets in g.items() for b in targets if a in g.get(b, ())})
    assert not pairs, "modules importing each other: %s" % pairs


def test_every_module_has_a_layer():
    assert not [m for m in graph() if layer(m) not in RANK]
