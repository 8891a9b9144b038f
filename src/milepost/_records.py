"""``to_dict()`` and short reprs for the read-only records Milepost returns.

Every record (:class:`~milepost.tracking.Run`, :class:`~milepost.models.ModelVersion`,
:class:`~milepost.promotion.PromotionRequest`, ...) is a frozen dataclass whose
``to_dict()`` is derived from its fields by :func:`record_dict`, so a field added later
reaches JSON output (the CLI's ``--json``, the HTTP API) without anyone remembering to.
Its ``__repr__`` is one short line saying what it is (``Run(abc123def456 'hgb'
FINISHED, 3 metrics)``), built with :func:`short`; the fields are one ``to_dict()`` away.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import PurePath
from typing import Any

__all__ = ["jsonable", "record_dict", "short"]

#: Longest text a repr shows of one value (messages, reasons) before "…".
REPR_TEXT = 48


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data: records through their ``to_dict()``, enums as their
    value, NaN and infinities as strings (JSON has none), times as ISO text, containers
    recursively."""
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict) and not isinstance(value, type):
        return to_dict()
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return str(value) if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return record_dict(value)
    model_dump = getattr(value, "model_dump", None)  # pydantic models
    if callable(model_dump):
        return model_dump(mode="json")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, PurePath):
        return str(value)
    return value


def record_dict(
    record: Any,
    *,
    exclude: Iterable[str] = (),
    rename: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A dataclass record's fields as JSON-ready data, in field order.

    Private fields (``_loader``) are left out.

    Args:
        record: a dataclass instance.
        exclude: fields that stay internal (e.g. a database row id).
        rename: field name -> key, where the wire form has always used another name.
        extra: derived values to add (e.g. ``uri``), after the fields.
    """
    skip = set(exclude)
    names = rename or {}
    out = {
        names.get(f.name, f.name): jsonable(getattr(record, f.name))
        for f in dataclasses.fields(record)
        if f.name not in skip and not f.name.startswith("_")
    }
    for key, value in (extra or {}).items():
        out[key] = jsonable(value)
    return out


def short(text: Any, limit: int = REPR_TEXT) -> str:
    """``text`` on one line, cut to ``limit`` characters with "…"."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
