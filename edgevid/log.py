"""Logging rules: the library logs under ``edgevid.*`` and never prints; the CLI installs handlers."""
from __future__ import annotations

import logging
import sys

ROOT = "edgevid"


def get_logger(name: str) -> logging.Logger:
    """Logger for a module, always below the ``edgevid`` root (``get_logger(__name__)``)."""
    if name != ROOT and not name.startswith(ROOT + "."):
        name = ROOT + "." + name
    return logging.getLogger(name)


def configure(verbosity: int = 0) -> None:
    """Install one stderr handler on the edgevid root logger (CLI only). 0 = info, 1+ = debug, -1 = warnings."""
    level = logging.DEBUG if verbosity > 0 else logging.WARNING if verbosity < 0 else logging.INFO
    root = logging.getLogger(ROOT)
    root.handlers[:] = []
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname).1s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False


_said_once = set()


def once(logger: logging.Logger, level: int, message: str, *args) -> None:
    """Log ``message`` only the first time it is seen in this process (drops, backend choice)."""
    key = (logger.name, message)
    if key not in _said_once:
        _said_once.add(key)
        logger.log(level, message, *args)
