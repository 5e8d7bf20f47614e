"""The ``edgevid`` command line: one verb per job (architecture.md §3a).

Each verb parses its arguments, calls the library and prints the result. Library errors
(:class:`EdgevidError`) become one line on stderr and the error's exit code; ``--debug`` shows the
traceback. Verb implementations are imported only when the verb runs, so ``edgevid --help`` works
on a device without torch, onnxruntime or OpenCV.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional

from ._version import __version__
from .errors import EdgevidError
from .commands import VERBS
from .log import configure

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgevid", description="Video action recognition from training to NVIDIA Jetson: "
        "train, export, stream and measure LiteEval, SlowFast and PreRNN-SIH models.")
    parser.add_argument("--version", action="version", version="edgevid " + __version__)
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    sub.required = True
    for name, (add_arguments, help_text) in VERBS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_arguments(p)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure(-1 if args.quiet else args.verbose)
    import importlib

    module = importlib.import_module("edgevid.commands." + args.verb.replace("-", "_"))  # analyze-saturation
    try:
        return int(module.main(args) or 0)
    except EdgevidError as e:
        if args.debug:
            raise
        print("edgevid %s: error: %s" % (args.verb, e), file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("edgevid %s: interrupted" % args.verb, file=sys.stderr)
        return 130


def print_json(data) -> None:
    """Print ``data`` as indented JSON on stdout (measuring verbs)."""
    print(json.dumps(data, indent=2, default=str))


def enable_progress(args) -> bool:
    """Progress bars only on an interactive stderr and when not quiet."""
    return not getattr(args, "quiet", False) and sys.stderr.isatty()

