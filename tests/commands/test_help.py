"""Every option of every verb says what it does; lists in the help come from the code that uses them;
the help points at documents a clone of the project has."""
from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from edgevid.cli import build_parser
from edgevid.models.slowfast_config import PRESETS

ROOT = Path(__file__).resolve().parents[2]


def subparsers():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return parser, sub.choices


def test_every_option_of_every_verb_has_help():
    parser, verbs = subparsers()
    missing = []
    for name, p in [("edgevid", parser)] + sorted(verbs.items()):
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            if not action.help or action.help == argparse.SUPPRESS:
                missing.append("%s %s" % (name, "/".join(action.option_strings) or action.dest))
    assert not missing, "options without help: %s" % missing


@pytest.mark.parametrize("option", ["--epochs", "--batch-size", "--lr", "--seed", "--fine-arch", "--cell"])
def test_train_options_say_their_default(option):
    _, verbs = subparsers()
    action = next(a for a in verbs["train"]._actions if option in a.option_strings)
    assert "default" in action.help, (option, action.help)


def test_train_help_lists_every_preset(capsys):
    _, verbs = subparsers()
    text = verbs["train"].format_help()
    for name in PRESETS:
        assert name in text, name
    assert "r101_8x8" in text


def test_export_preset_is_one_of_the_presets():
    _, verbs = subparsers()
    for verb in ("train", "export"):
        action = next(a for a in verbs[verb]._actions if "--preset" in a.option_strings)
        assert tuple(action.choices) == tuple(PRESETS)


def test_help_cites_documents_of_the_project():
    """Help texts cite docs/<file>.md §N of this repository, and the section exists there."""
    parser, verbs = subparsers()
    text = "\n".join([parser.format_help()] + [p.format_help() for p in verbs.values()])
    text = re.sub(r"\s+", " ", text)  # argparse wraps lines
    cited = re.findall(r"([\w/.-]*\w\.md) §(\d+(?:\.\d+)*)", text)
    assert cited  # the train help cites the models
    for doc, section in cited:
        assert doc.startswith("docs/"), doc
        body = (ROOT / doc).read_text()
        assert re.search(r"^#+ %s\b" % re.escape(section), body, flags=re.M), (doc, section)
