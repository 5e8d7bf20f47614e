"""The one error tree of edgevid.

Every error a user can cause is an :class:`EdgevidError`. Its message says three things: what went
wrong, why, and what to do about it. The CLI prints that message (no traceback) and exits with the
class's ``exit_code``.
"""
from __future__ import annotations

import errno
from typing import Optional


class EdgevidError(Exception):
    """Base of all edgevid errors: ``what`` happened, ``why``, and the ``fix`` to try."""

    exit_code = 1

    def __init__(self, what: str, why: Optional[str] = None, fix: Optional[str] = None):
        self.what, self.why, self.fix = what, why, fix
        message = what.rstrip(".")
        if why:
            message += ": " + why.rstrip(".")
        message += "."
        if fix:
            message += " " + fix[:1].upper() + fix[1:].rstrip(".") + "."
        super().__init__(message)


class DependencyError(EdgevidError, ImportError):
    """An optional package is missing; the message names the extra or JetPack package."""

    exit_code = 3


class ManifestError(EdgevidError):
    """A bundle or its bundle.json is missing, corrupt, tampered with or of an unknown schema."""

    exit_code = 4


class ExportError(EdgevidError):
    """A model could not be exported to ONNX, or the exported graph breaks the contract."""

    exit_code = 5


class BuildError(EdgevidError):
    """A TensorRT engine could not be built."""

    exit_code = 6


class EngineMismatchError(BuildError):
    """An engine was built for another TensorRT version, GPU or precision."""


class SessionError(EdgevidError):
    """An inference session could not be created or run (wrong feeds, backend failure)."""

    exit_code = 7


class SourceError(EdgevidError):
    """A frame source could not be opened or failed while streaming."""

    exit_code = 8


class FrameError(SourceError):
    """A frame has the wrong shape, channel count or dtype."""


class CalibrationError(EdgevidError):
    """Calibration data is missing or unusable."""

    exit_code = 9


class DataError(EdgevidError):
    """A data set or video file is missing, empty, unreadable or mislabelled."""

    exit_code = 10


class CheckpointError(EdgevidError):
    """A checkpoint is unreadable or does not match the model it is loaded into."""

    exit_code = 11


class ConfigError(EdgevidError):
    """A setting or argument has a value edgevid cannot use."""

    exit_code = 2


class TelemetryError(EdgevidError):
    """A tegrastats line could not be read, or tegrastats could not be started."""

    exit_code = 12


class OutputError(EdgevidError):
    """An output could not be written: the disk is full, the file too large, the folder read-only or not ours."""

    exit_code = 13


# the errnos of a write that the user can do something about (space, limits, permissions), as OutputError
WRITE_ERRNOS = frozenset(getattr(errno, name) for name in ("ENOSPC", "EDQUOT", "EFBIG", "EROFS", "EACCES", "EPERM")
                         if hasattr(errno, name))


def output_error(e: OSError) -> Optional["OutputError"]:
    """The OutputError for an OSError of one of WRITE_ERRNOS (None for any other)."""
    if e.errno not in WRITE_ERRNOS:
        return None
    where = " %s" % e.filename if e.filename else ""
    return OutputError("cannot write%s" % where, e.strerror or str(e),
                       "free space, raise the file size limit, or choose another output folder you can write; "
                       "what was there before is unchanged (edgevid writes to a temporary file and renames it)")
