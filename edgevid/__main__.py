"""``python -m edgevid`` = the ``edgevid`` command."""
import sys

from .cli import main

sys.exit(main())
