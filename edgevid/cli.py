"""The ``edgevid`` command line: one verb per job (docs/cli.md).

Each verb parses its arguments, calls the library and prints the result. Library errors
(:class:`EdgevidError`) become one line on stderr and the error's exit code; ``--debug`` also shows the
traceback (same exit code). ``--debug``, ``-v`` and ``-q`` go before or after the verb. Verb
implementations are imported only when the verb runs, so ``edgevid --help`` works on a device without
torch, onnxruntime or OpenCV.
"""
from __future__ import annotations

import argparse
import os
import sys
import traceback
from typing import List, Optional

from ._version import __version__
from .errors import EdgevidError, output_error
from .commands import VERBS
from .log import configure


def common_options() -> argparse.ArgumentParser:
    """The options every verb accepts, before or after the verb.

    The main parser and every subparser share them; their defaults are SUPPRESS so a subparser never
    overwrites a value given before the verb (``main`` fills in the real defaults).
    """
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                        help="more log output (-vv for debug)")
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                        help="warnings and errors only")
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the traceback of an error (the exit code stays the error's own)")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = common_options()
    parser = argparse.ArgumentParser(
        prog="edgevid", parents=[common], description="Video action recognition from training to the robot: "
        "train, export, verify and stream LiteEval, SlowFast and PreRNN-SIH models (ONNX Runtime on CPU).",
        epilog="Run 'edgevid VERB --help' for a verb's options; docs/cli.md describes every verb and exit code.")
    parser.add_argument("--version", action="version", version="edgevid " + __version__,
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    sub.required = True
    for name, (add_arguments, help_text) in VERBS.items():
        p = sub.add_parser(name, help=help_text, description=help_text, parents=[common])
        add_arguments(p)
    return parser


def stop_on_sigterm() -> None:
    """SIGTERM (systemd stopping the unit, a supervisor) stops a command as Ctrl-C does: its run ends, stats and
    outputs are written or left as they were, and the exit code is 130. Only in the main thread (where Python
    delivers signals), and only when nothing else installed a handler."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt("SIGTERM")


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name, default in (("verbose", 0), ("quiet", False), ("debug", False)):
        if not hasattr(args, name):
            setattr(args, name, default)
    configure(-1 if args.quiet else args.verbose)
    stop_on_sigterm()
    import importlib

    try:
        module = importlib.import_module("edgevid.commands." + args.verb.replace("-", "_"))  # analyze-saturation
        return int(module.main(args) or 0)
    except EdgevidError as e:
        if args.debug:
            traceback.print_exc(file=sys.stderr)
        print("edgevid %s: error: %s" % (args.verb, e), file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        if args.debug:
            traceback.print_exc(file=sys.stderr)
        print("edgevid %s: interrupted" % args.verb, file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader closed stdout ('edgevid info B --json | head'): stop quietly, as other Unix tools do, and
        # keep Python from failing again when it flushes stdout at exit
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for such a tool
    except OSError as e:  # a full disk, a file size limit, a read-only folder: said as what to do, not a traceback
        out = output_error(e)
        if out is None:
            raise
        if args.debug:
            traceback.print_exc(file=sys.stderr)
        print("edgevid %s: error: %s" % (args.verb, out), file=sys.stderr)
        return out.exit_code
