"""The one comparison of a served (or online) value with an offline one."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest

from milepost.features.consistency import ABS_TOL, REL_TOL, values_agree


@pytest.mark.parametrize(
    ("a", "b", "agree"),
    [
        (1.0, 1.0 + 1e-9, True),  # far inside the relative tolerance
        (1.0, 1.0 + 1e-5, False),  # ten times outside it
        (1e6, 1e6 + 0.5, True),  # relative: half a unit of a million
        (0.0, 1e-10, True),  # absolute near zero
        (0.0, 1e-8, False),
        (3, 3.0, True),  # an int column offline comes back float when it has nulls
        (3, np.float64(3.0), True),
        (np.int64(3), 3, True),
        (3, 4, False),
        ("gold", "gold", True),  # categorical: exact
        ("gold", "Gold", False),
        ("1.0", 1.0, False),  # text is not a number
        (True, True, True),
        (True, 1, False),  # a boolean is not the number 1
        (None, None, True),
        (None, math.nan, True),
        (math.nan, pd.NA, True),
        (None, 0.0, False),
        (0.0, None, False),
        ("2026-01-02 03:04:05+00:00", pd.Timestamp("2026-01-02 03:04:05", tz="UTC"), True),
        ("2026-01-02 03:04:06+00:00", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), False),
        ("not a time", pd.Timestamp("2026-01-02", tz="UTC"), False),
    ],
)
def test_values_agree(a: Any, b: Any, agree: bool) -> None:
    assert values_agree(a, b) is agree
    assert values_agree(b, a) is agree  # symmetric


def test_the_documented_tolerances() -> None:
    assert (REL_TOL, ABS_TOL) == (1e-6, 1e-9)
    assert values_agree(100.0, 100.0 * (1 + REL_TOL / 2))
    assert not values_agree(100.0, 100.0 * (1 + REL_TOL * 2))
