"""Checks of configuration values that raise :class:`ConfigError` naming the dotted key."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["ConfigError", "check_at_least", "check_choice", "check_number"]


class ConfigError(ValueError):
    """A bad configuration value; ``key`` is the dotted field name ("optim.lr", "neuron.tau")."""

    def __init__(self, key: str, message: str) -> None:
        self.key, self.message = key, message
        super().__init__(f"{key}: {message}")


def check_choice(key: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(key, f"unknown value {value!r}; expected one of {list(choices)}")


def check_at_least(key: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(key, f"must be an integer >= {low}, got {value!r}")


def check_number(
    key: str,
    value: Any,
    *,
    positive: bool = False,
    low: float | None = None,
    high: float | None = None,
) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok and positive:
        ok = value > 0
    if ok and low is not None:
        ok = value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        bounds = "> 0" if positive else f"in [{low}, {high if high is not None else 'inf'}]"
        raise ConfigError(key, f"must be a finite number {bounds}, got {value!r}")
