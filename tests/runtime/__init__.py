"""Tests of edgevid.runtime (a package, so test module names cannot clash with other test folders)."""
