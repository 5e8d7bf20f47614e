"""CLI verbs. ``args.py`` registers each verb's arguments (light) in ``VERBS``; each verb's ``main(args)`` lives
in ``commands/<verb>.py`` and is imported only when that verb runs. The output helpers every verb shares are here."""
from __future__ import annotations

import json
import sys
from typing import Any

def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout (measuring verbs)."""
    print(json.dumps(data, indent=2, default=str))


def enable_progress(options: Any) -> bool:
    """Progress bars only on an interactive stderr and when not quiet."""
    return not getattr(options, "quiet", False) and sys.stderr.isatty()


def flow_spec(options: Any) -> Any:
    """The FlowSpec of ``--flow``, ``--flow-bound``, ``--flow-size`` (None without ``--flow``: colour frames)."""
    if options.flow is None:
        return None
    from ..data.flow import FlowSpec

    return FlowSpec(options.flow, options.flow_bound, options.flow_size)


from .args import VERBS  # noqa: E402,F401  (the verbs, registered there)
