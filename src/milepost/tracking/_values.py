"""Checks for the numbers a caller logs: metric values, steps and timestamps.

Semantics (as in MLflow): a metric value is any real number, NaN and infinities
included (NaN is stored as NULL and read back as NaN). Booleans, strings, ``None`` and
arrays are refused, as is a number too large for a 64-bit float. Steps and timestamps
are whole numbers that fit a signed 64-bit integer (the database's BIGINT); a float is
accepted only when it is whole (``3.0``), never when it has a fraction, NaN or infinity.
Numpy scalars, ``Fraction`` and ``Decimal`` are accepted.
"""

from __future__ import annotations

import decimal
import math
import numbers
from typing import Any

from milepost._validate import INT64_MAX, INT64_MIN, short_repr
from milepost.errors import InvalidInput

__all__ = ["INT64_MAX", "INT64_MIN", "int64", "metric_value", "short_repr"]


def metric_value(key: str, value: Any) -> float:
    """``value`` as a float, or InvalidInput saying why it cannot be a metric value."""
    if type(value) is float:
        return value
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, decimal.Decimal)):
        raise InvalidInput(
            f"Metric {key!r} must be a real number, got {short_repr(value)} "
            f"({type(value).__name__}).",
            hint="Log text as a tag or a param instead; log an array one value per step.",
        )
    try:
        result = float(value)
    except (OverflowError, ValueError, ArithmeticError):
        result = math.nan if isinstance(value, decimal.Decimal) and value.is_nan() else math.inf
    if math.isinf(result) and not value == result:  # a finite number beyond a float's range
        raise InvalidInput(
            f"Metric {key!r} = {short_repr(value)} is too large for a float "
            "(at most about 1.8e308 in size).",
            hint="Log it scaled (for example its logarithm), or as a param.",
        )
    return result


def int64(name: str, value: Any) -> int:
    """A step or timestamp as an int that fits BIGINT, or InvalidInput naming ``name``."""
    if type(value) is int:
        number = value
    elif isinstance(value, numbers.Integral) and not isinstance(value, bool):
        number = int(value)
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        try:
            as_float = float(value)
        except (OverflowError, ValueError):
            as_float = math.inf
        if not (math.isfinite(as_float) and as_float.is_integer()):
            raise InvalidInput(
                f"{name} must be a whole number (an integer), got {short_repr(value)}."
            )
        number = int(as_float)
    else:
        raise InvalidInput(
            f"{name} must be an integer, got {short_repr(value)} ({type(value).__name__})."
        )
    if not INT64_MIN <= number <= INT64_MAX:
        raise InvalidInput(
            f"{name} must fit a signed 64-bit integer ({INT64_MIN} to {INT64_MAX}), "
            f"got {short_repr(number)}.",
            hint="Timestamps are milliseconds since the epoch; steps count from 0.",
        )
    return number
