"""CLI verbs. ``args.py`` registers each verb's arguments (light); each verb's ``main(args)`` lives in
``commands/<verb>.py`` and is imported only when that verb runs."""
from __future__ import annotations

from typing import Callable, Dict, Tuple

# verb -> (add_arguments(parser), one-line help), in the order shown by --help
VERBS: Dict[str, Tuple[Callable, str]] = {}


def verb(name: str, help: str) -> Callable:
    """Decorator registering ``add_arguments`` for the verb ``name``."""
    def register(add_arguments: Callable) -> Callable:
        VERBS[name] = (add_arguments, help)
        return add_arguments
    return register


from . import args  # noqa: E402,F401  (registers the verbs)
