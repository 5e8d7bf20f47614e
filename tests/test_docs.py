"""The project's own documentation: every reference to it from the code resolves, docs/cli.md covers every
option of every verb, and nothing points at files outside the repository."""
from __future__ import annotations

import argparse
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def headings(doc: Path):
    return {m.group(1) for m in re.finditer(r"^#+ (\d+(?:\.\d+)*)\b", doc.read_text(), flags=re.M)}


def test_every_section_cited_from_the_code_exists():
    cited = []
    for path in sorted((ROOT / "edgevid").rglob("*.py")) + [ROOT / "README.md"]:
        text = re.sub(r"\s+", " ", path.read_text())
        cited += [(path, m.group(1), m.group(2)) for m in re.finditer(r"docs/(\w+)\.md §(\d+(?:\.\d+)*)", text)]
    assert cited
    missing = []
    for path, doc, section in cited:
        target = DOCS / (doc + ".md")
        if not target.exists() and doc in ("architecture", "bundle"):
            continue  # written with the core redesign; linked from docs/README.md already
        if not target.exists() or section not in headings(target):
            missing.append("%s cites docs/%s.md §%s" % (path.relative_to(ROOT), doc, section))
    assert not missing, missing


def test_models_md_keeps_the_section_numbers_the_code_uses():
    have = headings(DOCS / "models.md")
    for section in ("1.1", "1.3", "1.4", "2.1", "2.2", "2.3", "2.4", "2.7", "2.8", "3.1", "3.3", "3.4", "3.5",
                    "3.6", "3.8", "3.9", "4.1", "4.4", "4.5", "4.7", "4.8", "4.9", "4.10"):
        assert section in have, section


def test_cli_md_names_every_option_of_every_verb():
    from edgevid.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    text = (DOCS / "cli.md").read_text()
    missing = []
    for name, p in sub.choices.items():
        if "## `edgevid %s`" % name not in text:
            missing.append("verb " + name)
        missing += ["%s %s" % (name, o) for a in p._actions for o in a.option_strings if o.startswith("--")
                    and "`%s" % o not in text]
    assert not missing, missing


def test_cli_md_lists_every_exit_code():
    from edgevid import errors

    text = (DOCS / "cli.md").read_text()
    for cls in vars(errors).values():
        if isinstance(cls, type) and issubclass(cls, errors.EdgevidError):
            assert "`%s`" % cls.__name__ in text, cls.__name__
            assert re.search(r"^\| %d \|" % cls.exit_code, text, flags=re.M), (cls.__name__, cls.exit_code)


def test_the_index_links_every_document():
    index = (DOCS / "README.md").read_text()
    for doc in ("cli.md", "models.md", "architecture.md", "bundle.md"):
        assert "](%s)" % doc in index, doc


def test_no_reference_leaves_the_repository():
    for path in [ROOT / "README.md"] + sorted(DOCS.glob("*.md")) + sorted((ROOT / "edgevid").rglob("*.py")):
        assert "../shared" not in path.read_text(), path
