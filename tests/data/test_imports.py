from __future__ import annotations

import subprocess
import sys


def test_importing_data_loads_neither_torch_nor_opencv():
    code = ("import sys, edgevid.data; "
            "print(sorted(m for m in ('torch', 'cv2', 'torchvision') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
