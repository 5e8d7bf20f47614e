"""The error tree: messages carry what, why and what to do; each class has its own exit code."""
from __future__ import annotations

import pytest

from edgevid import errors


def test_message_has_what_why_and_fix():
    e = errors.SourceError("cannot open camera 3", "no such device", "list cameras with v4l2-ctl --list-devices")
    assert str(e) == "cannot open camera 3: no such device. List cameras with v4l2-ctl --list-devices."


def test_tree_shape():
    assert issubclass(errors.DependencyError, ImportError)
    assert issubclass(errors.EngineMismatchError, errors.BuildError)
    assert issubclass(errors.FrameError, errors.SourceError)
    for name in ("DependencyError", "ManifestError", "ExportError", "BuildError", "SessionError", "SourceError",
                 "CalibrationError", "DataError", "CheckpointError", "ConfigError"):
        assert issubclass(getattr(errors, name), errors.EdgevidError)


def test_exit_codes_are_distinct_and_nonzero():
    classes = [errors.DependencyError, errors.ManifestError, errors.ExportError, errors.BuildError,
               errors.SessionError, errors.SourceError, errors.CalibrationError, errors.DataError,
               errors.CheckpointError, errors.ConfigError]
    codes = [c.exit_code for c in classes]
    assert len(set(codes)) == len(codes) and 0 not in codes


def test_public_api_exports_the_tree(tmp_path):
    """Every error class is importable from ``edgevid`` itself, as the very class the library raises."""
    import edgevid

    tree = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.EdgevidError)]
    assert len(tree) >= 12
    for cls in tree:
        assert getattr(edgevid, cls.__name__) is cls, cls.__name__
    # a real failure caught by the top-level name: the specific class, not just some EdgevidError
    with pytest.raises(edgevid.ManifestError, match="does not exist") as info:
        edgevid.load_bundle(tmp_path / "no-bundle")
    assert type(info.value) is errors.ManifestError and info.value.exit_code == errors.ManifestError.exit_code
    with pytest.raises(edgevid.ConfigError):
        edgevid.open_session(tmp_path / "g.onnx", backend="cuda")
