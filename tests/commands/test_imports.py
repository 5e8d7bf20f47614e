"""Imports point one way: cli imports commands, never the reverse (no cycle)."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

COMMANDS = Path(__file__).resolve().parents[2] / "edgevid" / "commands"


def imported_modules(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            yield base
            for alias in node.names:
                yield base + ("" if base.endswith(".") else ".") + alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name


def test_no_commands_module_imports_cli():
    for path in sorted(COMMANDS.glob("*.py")):
        bad = [m for m in imported_modules(path) if m in ("..cli", "edgevid.cli")]
        assert not bad, "%s imports %s" % (path.name, bad)


def test_helpers_live_in_commands_and_cli_is_not_loaded_by_a_verb():
    code = ("import sys, edgevid.commands.demo, edgevid.commands.train, edgevid.commands.info, "
            "edgevid.commands.verify, edgevid.commands.analyze_saturation\n"
            "from edgevid.commands import print_json, enable_progress\n"
            "assert 'edgevid.cli' not in sys.modules, 'a verb imported edgevid.cli'\n"
            "print('ok')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr
