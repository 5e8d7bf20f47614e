"""Training-flag helpers that need no torch import (verify uses them on the device side)."""
from __future__ import annotations

import contextlib


@contextlib.contextmanager
def eval_mode(module):
    """Put ``module`` in eval mode for the block; restore every submodule's own training flag after."""
    flags = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for m, flag in flags:
            m.training = flag
