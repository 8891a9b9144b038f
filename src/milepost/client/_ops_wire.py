"""Small helpers the operations proxies share: path segments, JSON bodies, times.

A proxy checks what it must put on the wire itself (a name in a path, a time) so junk
gets the same :class:`~milepost.errors.InvalidInput` as in embedded mode instead of a
``TypeError`` from the JSON encoder; everything else is the server's service to check.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from milepost import _validate as check
from milepost._records import jsonable
from milepost.errors import InvalidInput

__all__ = ["body", "ms", "seg"]


def seg(value: Any, what: str) -> str:
    """``value`` as one URL path segment (a non-empty string, percent-encoded)."""
    text = check.text(value, what)
    if not text:
        raise InvalidInput(f"{what} is empty.")
    return quote(text, safe="")


def ms(value: Any, what: str) -> int | None:
    """A moment (an aware datetime or epoch ms) as epoch ms; None stays None."""
    return None if value is None else check.timestamp_ms(value, what)


def body(**fields: Any) -> dict[str, Any]:
    """A JSON request body of ``fields`` (records and enums as their JSON form).

    Raises:
        InvalidInput: a value JSON cannot carry (an object, NaN in a number).
    """
    data = {k: jsonable(v) for k, v in fields.items()}
    try:
        json.dumps(data, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"Cannot send this request: {exc}.",
            hint="Pass plain values (text, numbers, lists, dicts) as the call documents.",
        ) from None
    return data
