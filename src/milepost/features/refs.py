"""Feature references (``view:feature``, ``view:vN:feature``) and the feature store's
argument checks, shared by the service's parts."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from milepost import _validate as check
from milepost.errors import InvalidInput

__all__ = [
    "MAX_SAMPLE",
    "check_feature_refs",
    "check_materialize_options",
    "check_moment",
    "check_rows",
    "parse_ref",
    "view_name",
    "view_ref",
]

#: The most entities a consistency check or an entity sample takes.
MAX_SAMPLE = 100_000


def view_name(name: object) -> str:
    """A feature view name (checked)."""
    return check.name(name, "Feature view name", max_length=128)


def _version_part(text: str) -> int | None:
    """``vN`` as N (1 to a 64-bit integer's maximum), else None."""
    digits = text[1:]
    if text.startswith("v") and digits.isascii() and digits.isdigit():
        number = int(digits)
        if 1 <= number <= check.INT64_MAX:
            return number
    return None


def view_ref(ref: object) -> tuple[str, int | None]:
    """``view`` or ``view:vN`` -> (view, N or None)."""
    text = check.name(ref, "Feature view", max_length=160)
    name, sep, version = text.partition(":")
    if not sep:
        return view_name(name), None
    number = _version_part(version)
    if number is None:
        raise InvalidInput(
            f"Feature view {check.short_repr(text)} is not VIEW or VIEW:vN "
            f"(N at least 1 and at most {check.INT64_MAX})."
        )
    return view_name(name), number


def parse_ref(ref: str) -> tuple[str, int | None, str]:
    """``view:feature`` or ``view:vN:feature`` -> (view, N or None, feature)."""
    check.name(ref, "Feature reference", max_length=400)
    parts = ref.split(":")
    if len(parts) == 2:
        return parts[0], None, parts[1]
    if len(parts) == 3 and _version_part(parts[1]) is not None:
        return parts[0], _version_part(parts[1]), parts[2]
    raise InvalidInput(f"Feature reference {ref!r} is not view:feature or view:vN:feature.")


def check_feature_refs(refs: object) -> list[str]:
    """A list of ``view:feature`` refs (each is checked when first parsed, not per read)."""
    return check.string_list(refs, "features")


def check_rows(rows: object, what: str) -> None:
    """A DataFrame or a list of row dicts, with unique column names."""
    if isinstance(rows, pd.DataFrame):
        check.unique_columns(rows, what)
        return
    if not isinstance(rows, (list, tuple)) or not all(isinstance(r, dict) for r in rows):
        raise InvalidInput(
            f"{what} must be a DataFrame or a list of row dicts, got "
            f"{check.short_repr(rows)} ({type(rows).__name__}).",
            hint='For example [{"customer_id": 7}].',
        )


def check_moment(value: object, what: str, *, optional: bool = False) -> None:
    """A datetime that a timestamp can hold (naive ones are UTC)."""
    if value is None and optional:
        return
    if not isinstance(value, datetime):
        raise InvalidInput(
            f"{what} must be a datetime, got {check.short_repr(value)} ({type(value).__name__}).",
            hint="For example datetime(2026, 1, 31, tzinfo=UTC).",
        )
    try:
        pd.Timestamp(value).as_unit("ns")
    except (ValueError, OverflowError) as exc:
        raise InvalidInput(
            f"{what} {value} is out of range ({exc}).",
            hint="Times from 1677 to 2262 can be stored.",
        ) from None


def check_materialize_options(views: object, progress: object) -> None:
    """``views`` (a list of view names or None) and ``progress`` (a function or None)."""
    if views is not None:
        for name in check.string_list(views, "views"):
            view_name(name)
    if progress is not None and not callable(progress):
        raise InvalidInput(
            f"progress must be a function (view, rows), got {type(progress).__name__}."
        )
