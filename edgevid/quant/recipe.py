"""Calibration recipes: which frames a bundle is calibrated on, written down so a calibration can be repeated.

A recipe is a JSON file (``calibration/*.json`` has one per demo family; calibration/README.md shows how to
write your own)::

    {
      "name": "liteeval-synthetic",            the artifacts record it
      "family": "liteeval",                    optional: refuse a bundle of another family
      "streams": ["synthetic:seed=7000,segments=24,frames=16,fps=10"],   any 'edgevid run --source' specs,
      "videos": "my-data/val",                 and/or a class-folder data set (root/<class>/<video>), or a list
      "max_videos": 40, "seed": 0,             a seeded sample of the videos, each streamed from its start
      "fps": null,                             sampling rate (null: the bundle's step rate, as 'edgevid run')
      "max_frames": 600,                       frames streamed in all, over the streams in order
      "min_samples": 64,                       calls each role must see (or {"fine_cnn": 32, "*": 64})
      "max_samples": {"fine_cnn": 128, "*": 256}   calls kept per role, evenly spaced over the stream
    }

Relative paths are relative to the recipe file. Unknown keys are refused (a typo is never ignored).
"""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Union

from ..errors import CalibrationError
from ..fsutil import probe
from ..families.settings import positive_setting

KEYS = ("name", "description", "family", "streams", "videos", "max_videos", "seed", "fps", "max_frames",
        "min_samples", "max_samples")
DEFAULT_MIN_SAMPLES = 32
DEFAULT_MAX_SAMPLES = 256  # kept per role, evenly spaced over the stream: a 224² CNN input is 0.6 MB a sample


@dataclass
class Recipe:
    """A validated recipe: ``streams`` are the source specs in the order they are streamed."""

    name: str
    path: Optional[Path]
    sha256: str
    streams: List[str]
    family: Optional[str] = None
    fps: Optional[float] = None
    max_frames: Optional[int] = None
    min_samples: Dict[str, int] = field(default_factory=lambda: {"*": DEFAULT_MIN_SAMPLES})
    max_samples: Dict[str, int] = field(default_factory=lambda: {"*": DEFAULT_MAX_SAMPLES})
    description: str = ""

    def minimum(self, role: str) -> int:
        return self.min_samples.get(role, self.min_samples.get("*", DEFAULT_MIN_SAMPLES))

    def maximum(self, role: str) -> int:
        return self.max_samples.get(role, self.max_samples.get("*", DEFAULT_MAX_SAMPLES))

    def to_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "file": None if self.path is None else str(self.path), "sha256": self.sha256,
                "streams": list(self.streams), "fps": self.fps, "max_frames": self.max_frames,
                "min_samples": dict(self.min_samples), "max_samples": dict(self.max_samples)}


def load_recipe(source: Union[str, Path, Mapping[str, Any]]) -> Recipe:
    """A recipe from a JSON file (or a mapping, relative paths then from the working folder); CalibrationError
    for unknown keys, bad values, missing videos or a recipe that names no frames."""
    path: Optional[Path] = None
    if isinstance(source, Mapping):
        data, raw = dict(source), json.dumps(source, sort_keys=True).encode()
    else:
        path = Path(source)
        try:
            raw = path.read_bytes()
            data = json.loads(raw.decode("utf-8"))
        except FileNotFoundError:
            raise CalibrationError("calibration recipe %s does not exist" % path, None,
                                   "pass one of calibration/*.json or write your own (calibration/README.md)") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise CalibrationError("cannot read the calibration recipe %s" % path, str(e),
                                   "fix the JSON (calibration/README.md shows the format)") from e
    if not isinstance(data, dict):
        raise CalibrationError("recipe %s is not a JSON object" % (path or "given"), None,
                               "write it as {\"name\": …, \"streams\": […]} (calibration/README.md)")
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise CalibrationError("recipe %s has unknown keys %s" % (path or "given", unknown),
                               "known keys are " + ", ".join(KEYS), "fix the spelling or remove them")
    base = path.parent if path is not None else Path(".")
    streams = _streams(data, base)
    return Recipe(name=str(data.get("name") or (path.stem if path else "recipe")), path=path,
                  sha256=hashlib.sha256(raw).hexdigest(), streams=streams, family=data.get("family"),
                  fps=_number(data, "fps", float), max_frames=_number(data, "max_frames", int),
                  min_samples=_per_role(data, "min_samples", DEFAULT_MIN_SAMPLES),
                  max_samples=_per_role(data, "max_samples", DEFAULT_MAX_SAMPLES),
                  description=str(data.get("description", "")))


def _streams(data: Mapping[str, Any], base: Path) -> List[str]:
    streams = data.get("streams") or []
    if isinstance(streams, str):
        streams = [streams]
    if not isinstance(streams, list) or not all(isinstance(s, str) and s for s in streams):
        raise CalibrationError("recipe streams are %r" % (streams,), "streams is a list of source specs",
                               "e.g. \"streams\": [\"synthetic:seed=7000\", \"recordings/drive1.mp4\"]")
    out = [_resolve(s, base) for s in streams]
    if data.get("videos") is not None:
        out.extend(_videos(data, base))
    if not out:
        raise CalibrationError("the recipe names no frames", "it has neither 'streams' nor 'videos'",
                               "add a class-folder data set ('videos') or stream specs ('streams')")
    return out


def _resolve(spec: str, base: Path) -> str:
    """A relative file path against the recipe's folder; other specs (synthetic, cameras, URLs) as they are."""
    if spec.startswith("synthetic") or "://" in spec or "!" in spec or spec.isdigit() or spec.startswith("/dev/"):
        return spec
    path = (base / spec) if not Path(spec).is_absolute() else Path(spec)
    if not probe(path, "file"):
        raise CalibrationError("recipe stream %s does not exist" % path, "streams that are files must be there",
                               "fix the path (relative paths start at the recipe's folder)")
    return str(path)


def _videos(data: Mapping[str, Any], base: Path) -> List[str]:
    from ..data.folder import VideoFolder
    from ..errors import DataError

    spec = data["videos"]
    if isinstance(spec, list):
        return [_resolve(str(v), base) for v in spec]
    root = base / str(spec) if not Path(str(spec)).is_absolute() else Path(str(spec))
    try:
        videos = [str(p) for p, _ in VideoFolder(root, num_frames=None).samples]
    except DataError as e:
        raise CalibrationError("cannot use %s for calibration" % root, str(e),
                               "point 'videos' at a class-folder data set (root/<class>/<video>)") from e
    limit = _number(data, "max_videos", int)
    if limit is not None and limit < len(videos):
        # a seeded sample spread over the classes, streamed in a fixed order
        videos = sorted(random.Random(int(data.get("seed") or 0)).sample(videos, limit))
    return videos


def _number(data: Mapping[str, Any], key: str, cast) -> Any:
    try:
        return positive_setting(data.get(key), key, cast)
    except Exception as e:  # ConfigError from the shared rule: here it is the recipe that is wrong
        raise CalibrationError("recipe %s=%r" % (key, data.get(key)), str(e), "fix the recipe") from e


def _per_role(data: Mapping[str, Any], key: str, default: int) -> Dict[str, int]:
    """A count for every role, or per role with "*" for the rest."""
    value = data.get(key)
    table = {"*": default} if value is None else dict(value) if isinstance(value, dict) else {"*": value}
    table.setdefault("*", default)
    return {str(role): _number({key: n}, key, int) for role, n in table.items()}
