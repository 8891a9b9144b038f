"""Checking :func:`~milepost.monitoring.feature_drift.drift`'s options: methods, thresholds,
counted methods, importances."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from milepost.errors import InvalidInput

METHODS: dict[str, tuple[str, ...]] = {
    "numeric": ("wasserstein", "psi", "ks", "jensen_shannon"),
    "categorical": ("psi", "chi_square", "jensen_shannon"),
}
#: Default threshold per method (see the module docstring for the rationale).
DEFAULT_THRESHOLDS: dict[str, float] = {
    "psi": 0.1,
    "ks": 0.05,
    "wasserstein": 0.1,
    "jensen_shannon": 0.1,
    "chi_square": 0.05,
}
#: The method that counts towards ``drifted_share`` per kind, by default.
PRIMARY: dict[str, str] = {"numeric": "wasserstein", "categorical": "psi"}
TESTS = frozenset({"ks", "chi_square"})
ALL_METHODS = ("psi", "ks", "wasserstein", "jensen_shannon", "chi_square")


def check_methods(methods: Sequence[str] | None) -> list[str]:
    if methods is None:
        return list(ALL_METHODS)
    if isinstance(methods, str):
        methods = [methods]
    bad = [m for m in methods if m not in ALL_METHODS]
    if bad or not methods:
        raise InvalidInput(
            f"Unknown drift method(s): {', '.join(map(repr, bad)) or '(none given)'}.",
            hint=f"Use some of: {', '.join(ALL_METHODS)}.",
        )
    return list(dict.fromkeys(methods))


def check_counted(primary: Mapping[str, str] | None, wanted: list[str]) -> dict[str, str]:
    chosen = dict(PRIMARY)
    for kind, method in (primary or {}).items():
        if kind not in METHODS or method not in METHODS[kind]:
            raise InvalidInput(
                f"primary={{{kind!r}: {method!r}}} is not a method for that kind.",
                hint="Numeric: "
                + ", ".join(METHODS["numeric"])
                + "; categorical: "
                + ", ".join(METHODS["categorical"])
                + ".",
            )
        chosen[kind] = method
    out = {}
    for kind, method in chosen.items():
        if method in wanted:
            out[kind] = method
        else:
            runs = [m for m in wanted if m in METHODS[kind]]
            if runs:
                out[kind] = runs[0]
    return out


def check_thresholds(
    thresholds: Mapping[str, float | Mapping[str, float]] | None,
) -> dict[tuple[str | None, str], float]:
    out: dict[tuple[str | None, str], float] = {(None, m): v for m, v in DEFAULT_THRESHOLDS.items()}
    for key, value in (thresholds or {}).items():
        if isinstance(value, Mapping):
            for method, v in value.items():
                out[(str(key), _method_name(method))] = _limit(method, v)
        elif key in ALL_METHODS:
            out[(None, key)] = _limit(key, value)
        else:
            raise InvalidInput(
                f"thresholds[{key!r}] = {value!r}: {key!r} is not a method.",
                hint=f"Per method: {{'psi': 0.1}}; per feature: {{{key!r}: {{'ks': 0.01}}}}. "
                f"Methods: {', '.join(ALL_METHODS)}.",
            )
    return out


def _method_name(method: Any) -> str:
    if method not in ALL_METHODS:
        raise InvalidInput(
            f"Unknown drift method {method!r} in thresholds.",
            hint=f"Use one of: {', '.join(ALL_METHODS)}.",
        )
    return str(method)


def _limit(method: str, value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if method in TESTS:
        ok = 0.0 < v < 1.0
        want = "a p-value threshold in (0, 1)"
    else:
        ok = math.isfinite(v) and v >= 0
        want = "a finite distance >= 0"
    if not ok or isinstance(value, bool):
        raise InvalidInput(f"Threshold for {method} must be {want}, got {value!r}.")
    return v


def check_importance(importance: Mapping[str, float] | None) -> dict[str, float]:
    out = {}
    for name, value in (importance or {}).items():
        try:
            v = float(value)
        except (TypeError, ValueError):
            v = math.nan
        if not math.isfinite(v):
            raise InvalidInput(f"importance[{name!r}] must be a finite number, got {value!r}.")
        out[str(name)] = v
    return out


def check_fraction(value: float, what: str) -> None:
    if not (isinstance(value, int | float) and 0 < value <= 1):
        raise InvalidInput(f"{what} must be in (0, 1], got {value!r}.")


def column_names(categorical: Iterable[str] | None) -> list[str]:
    if categorical is None:
        return []
    return [categorical] if isinstance(categorical, str) else [str(c) for c in categorical]


def check_known(names: set[str], columns: set[str]) -> None:
    missing = names - columns
    if missing:
        raise InvalidInput(
            f"categorical names columns neither frame has: {', '.join(sorted(missing))}.",
            hint=f"Columns: {', '.join(sorted(columns))}.",
        )
