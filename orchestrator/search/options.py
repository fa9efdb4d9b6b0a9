"""Strategy options: build a frozen config dataclass from keyword options, with clear errors."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from orchestrator.search.base import StrategyError

C = TypeVar("C")


def build_config(cls: type[C], strategy: str, options: Mapping[str, Any]) -> C:
    """``cls(**options)``, refusing unknown option names with the list of allowed ones."""
    allowed = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise StrategyError(
            f"unknown option(s) {', '.join(map(repr, unknown))} for strategy {strategy!r}; "
            f"allowed: {', '.join(allowed)}"
        )
    return cls(**options)


def require_int(cfg: object, name: str, minimum: int) -> None:
    v = getattr(cfg, name)
    if not isinstance(v, int) or isinstance(v, bool) or v < minimum:
        raise StrategyError(f"option {name} must be an integer >= {minimum}; got {v!r}")


def require_number(cfg: object, name: str, low: float, high: float | None = None,
                   low_open: bool = False, high_open: bool = True) -> None:
    """A real number in the given interval (bounds inclusive unless marked open)."""
    v = getattr(cfg, name)
    ok = isinstance(v, int | float) and not isinstance(v, bool)
    if ok:
        ok = (v > low) if low_open else (v >= low)
        if ok and high is not None:
            ok = (v < high) if high_open else (v <= high)
    if not ok:
        lo = f"({low:g}" if low_open else f"[{low:g}"
        hi = "inf)" if high is None else (f"{high:g})" if high_open else f"{high:g}]")
        raise StrategyError(f"option {name} must be a number in {lo}, {hi}; got {v!r}")


def require_bool(cfg: object, name: str) -> None:
    v = getattr(cfg, name)
    if not isinstance(v, bool):
        raise StrategyError(f"option {name} must be true or false; got {v!r}")
