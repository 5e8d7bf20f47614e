"""The shape of one family's rules: :class:`Family`, :class:`PrecisionRule`, :class:`StateLink` (plain Python)."""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from ..errors import ConfigError, ManifestError
from .settings import Setting, check_settings

PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class PrecisionRule:
    """Which precisions one role may run at, its default on TensorRT, and why (shown in bundles and reports).

    ``opt_in`` precisions are allowed but made only when asked for by name (``edgevid quantize --role``):
    e.g. SlowFast's 3D convolutions at INT8, where TensorRT gains little over FP16."""

    allowed: Tuple[str, ...]
    default: str
    why: str
    opt_in: Tuple[str, ...] = ()

    def allows(self, precision: str) -> bool:
        return precision in self.allowed


@dataclass(frozen=True)
class StateLink:
    """One recurrent state input and the graph outputs that can feed it at the next step, in priority order
    (LiteEval's h_f_in comes from fine_step's h_f_out on fine steps, from coarse_step's h_f_sync otherwise)."""

    role: str
    input: str
    sources: Tuple[Tuple[str, str], ...]


@dataclass(frozen=True)
class Family:
    """One model family's rules (see the module docstring). Entries ``module:name`` are imported on use."""

    name: str
    title: str
    roles: Tuple[str, ...]
    policy_kind: str
    settings: Mapping[str, Setting]
    stream_options: Tuple[str, ...]
    precision: Mapping[str, PrecisionRule]
    state: Tuple[StateLink, ...] = ()
    gated_roles: Tuple[str, ...] = ()  # roles that run on some steps only (their share is the "fine rate")
    preprocess: Optional[Callable[..., Any]] = None
    contract: Optional[Callable[[Any], Any]] = None  # contract(bundle) -> checked geometry; ManifestError
    cross_check: Optional[Callable[[Dict[str, Any]], None]] = None  # checks between settings; ConfigError
    entries: Mapping[str, str] = field(default_factory=dict)  # "module:name" (or a module) per job

    def entry(self, what: str) -> Any:
        """The object named by ``entries[what]`` (e.g. "stages" → the runtime stages class), imported now."""
        target = self.entries.get(what)
        if target is None:
            raise ConfigError("the %s family has no %s" % (self.name, what), None,
                              "use a family that has one")
        module, _, name = target.partition(":")
        loaded = importlib.import_module(module)
        return getattr(loaded, name) if name else loaded

    def check_policy(self, policy: Mapping[str, Any], overrides: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
        """Every setting of this family from a bundle ``policy`` (``overrides`` win where not None), validated.

        ConfigError for a bad value or a policy of another family's kind."""
        kind = policy.get("kind", self.policy_kind)
        if kind != self.policy_kind:
            raise ConfigError("bundle policy kind is '%s'" % kind, "%s streams run the '%s' policy"
                              % (self.title, self.policy_kind), "re-export the bundle as a %s bundle" % self.title)
        checked = check_settings(self.settings, policy, overrides)
        if self.cross_check is not None:
            self.cross_check(checked)
        return checked

    def check_options(self, options: Mapping[str, Any]) -> None:
        """ConfigError for a stream option this family does not take (e.g. fine_cap on a SlowFast bundle)."""
        unknown = sorted(set(options) - set(self.stream_options))
        if unknown:
            raise ConfigError("option %s does not apply to a %s stream" % (", ".join(unknown), self.title),
                              "it takes %s" % (", ".join(self.stream_options) or "no options"), "leave it out")

    def precision_rule(self, role: str) -> PrecisionRule:
        if role not in self.precision:
            raise ManifestError("the %s family has no role '%s'" % (self.name, role), "its roles are "
                                + ", ".join(self.roles), "re-export the bundle")
        return self.precision[role]

    def precision_notes(self) -> Dict[str, str]:
        """Role → one line for bundle.json and ``edgevid info``."""
        return {role: "%s allowed (TensorRT default %s): %s" % ("/".join(r.allowed), r.default, r.why)
                for role, r in self.precision.items()}


