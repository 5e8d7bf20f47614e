"""Validation of policy settings (bundle.json ``policy`` and the options that override it), one rule each.

A family declares its settings as a table ``name -> Setting``; :func:`check_settings` merges a
bundle's policy with overrides (None means "not given") and validates every entry with the same
rule at export, at run time and in verify, so a value accepted by one is accepted by all.
Plain Python only: this module runs on the device.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from ..errors import ConfigError


@dataclass(frozen=True)
class Setting:
    """One policy number or choice: ``kind`` "int", "float" or "choice"; ``default`` when unset."""

    kind: str
    default: Any = None
    allow_zero: bool = False
    choices: Tuple[str, ...] = ()
    maximum: Optional[float] = None
    help: str = ""

    def check(self, name: str, value: Any) -> Any:
        if value is None:
            return self.default
        if self.kind == "choice":
            if value not in self.choices:
                raise ConfigError("bad policy setting %s=%r" % (name, value), "it is one of " + ", ".join(self.choices),
                                  "fix it in the bundle's policy or in the option you passed")
            return value
        number = positive_setting(value, name, int if self.kind == "int" else float, self.allow_zero)
        if self.maximum is not None and number > self.maximum:
            raise ConfigError("bad policy setting %s=%r" % (name, value), "it is at most %g" % self.maximum,
                              self.help or "use a smaller value")
        return number


def positive_setting(value: Any, name: str, cast: Callable[[Any], Any], allow_zero: bool = False) -> Any:
    """A policy number (from bundle.json or an option): positive, whole where ``cast`` is int; None stays None."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    bad = isinstance(value, bool) or not number >= 0 or (number == 0 and not allow_zero) \
        or (cast is int and not number.is_integer())
    if bad:
        raise ConfigError("bad policy setting %s=%r" % (name, value),
                          "it must be a %s number" % ("non-negative whole" if allow_zero and cast is int else
                                                      "positive whole" if cast is int else "positive"),
                          "fix it in the bundle's policy or in the option you passed")
    return cast(number)


def check_settings(table: Mapping[str, Setting], policy: Mapping[str, Any],
                   overrides: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """Every setting of ``table`` from ``policy`` (``overrides`` win where not None), validated."""
    merged = dict(policy)
    merged.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return {name: rule.check(name, merged.get(name)) for name, rule in table.items()}


def merge_policy(defaults: Mapping[str, Any], policy: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """``defaults`` updated by ``policy``; keys outside ``defaults`` are refused (a typo is never ignored)."""
    merged = dict(defaults)
    if policy:
        unknown = sorted(set(policy) - set(defaults))
        if unknown:
            raise ConfigError("unknown policy settings %s" % unknown, None, "known settings are " + ", ".join(defaults))
        merged.update(policy)
    return merged
