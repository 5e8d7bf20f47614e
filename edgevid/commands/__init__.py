"""CLI verbs. ``args.py`` registers each verb's arguments (light); each verb's ``main(args)`` lives in
``commands/<verb>.py`` and is imported only when that verb runs."""
from __future__ import annotations

import json
import sys
from typing import Any, Callable, Dict, Tuple

# verb -> (add_arguments(parser), one-line help), in the order shown by --help
VERBS: Dict[str, Tuple[Callable, str]] = {}


def verb(name: str, help: str) -> Callable:
    """Decorator registering ``add_arguments`` for the verb ``name``."""
    def register(add_arguments: Callable) -> Callable:
        VERBS[name] = (add_arguments, help)
        return add_arguments
    return register


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout (measuring verbs)."""
    print(json.dumps(data, indent=2, default=str))


def enable_progress(options: Any) -> bool:
    """Progress bars only on an interactive stderr and when not quiet."""
    return not getattr(options, "quiet", False) and sys.stderr.isatty()


from . import args  # noqa: E402,F401  (registers the verbs)
