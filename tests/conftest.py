"""Shared test helpers. Tests run on CPU; models are tiny; data is generated in the test."""
from __future__ import annotations

import os

# keep tests predictable on a 2-core machine: one BLAS/ORT thread per process unless a test says otherwise
os.environ.setdefault("OMP_NUM_THREADS", "1")
