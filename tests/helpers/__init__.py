"""Test helpers, imported as ``from tests.helpers import tiny_liteeval`` (tests/ is a package; pytest's rootdir
is the repository, so ``python3 -m pytest -q`` from there finds ``tests``).

- ``tiny_liteeval``, ``tiny_prernn``, ``tiny_clip``: tiny models of each family, their bundles (exported with
  torch, or the committed ones in tests/fixtures/bundles) and numpy/torch references.
- ``bundles``: where the committed fixture bundles are, and copies of them.
- ``numpy_session``: a Session whose infer is a numpy function, for tests where the graph maths is not tested.
- ``onnx_files``: tiny ONNX graphs written without the onnx package.
- ``export_helpers``: small LiteEval models, features and frames for the export and verify tests (torch).
"""
