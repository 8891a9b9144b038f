from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from milepost.errors import InvalidInput
from milepost.models.signature import ColumnSpec, Signature, enforce, infer_signature


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [30, 40],
            "spend": [1.5, np.nan],
            "plan": ["basic", "premium"],
            "vip": [True, False],
            "since": pd.to_datetime(["2026-01-01", "2026-02-01"]),
        }
    )


def test_infers_types_and_nullability(frame: pd.DataFrame) -> None:
    sig = infer_signature(frame, np.array([0, 1]))
    assert [(c.name, c.type, c.nullable) for c in sig.inputs] == [
        ("age", "integer", False),
        ("spend", "float", True),
        ("plan", "string", False),
        ("vip", "boolean", False),
        ("since", "datetime", False),
    ]
    assert sig.outputs == [ColumnSpec("prediction", "integer", False)]
    assert Signature.from_dict(sig.to_dict()) == sig


def test_enforce_aligns_order_and_widens_safely(frame: pd.DataFrame) -> None:
    sig = infer_signature(frame)
    shuffled = frame[["plan", "since", "vip", "spend", "age"]].assign(spend=[1, 2])
    out = enforce(shuffled, sig)
    assert list(out.columns) == sig.input_names
    assert out["spend"].dtype == np.float64
    rows = [{"age": 1, "spend": 2, "plan": "x", "vip": True, "since": pd.Timestamp("2026-01-01")}]
    assert enforce(pd.DataFrame(rows), sig)["spend"].iloc[0] == 2.0


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda f: f.drop(columns=["plan"]), "missing column 'plan'"),
        (lambda f: f.assign(extra=1), "column 'extra', which the model does not take"),
        (lambda f: f.assign(age=[30.5, 40.0]), "'age' has type float64 .*floats are not narrowed"),
        (lambda f: f.assign(plan=[1, 2]), "'plan' has type int64, but the model expects string"),
        (lambda f: f.assign(vip=["yes", "no"]), "'vip' .* expects boolean"),
        (
            lambda f: f.assign(age=pd.array([30, None], dtype="Int64")),
            "'age' has a null \\(row 1\\)",
        ),
    ],
)
def test_enforce_names_the_offending_column(
    frame: pd.DataFrame, change: object, match: str
) -> None:
    sig = infer_signature(frame)
    with pytest.raises(InvalidInput, match=match):
        enforce(change(frame), sig)  # type: ignore[operator]


def test_extra_columns_can_be_ignored(frame: pd.DataFrame) -> None:
    sig = infer_signature(frame)
    out = enforce(frame.assign(extra=1), sig, extra_columns="ignore")
    assert "extra" not in out.columns


def test_unsupported_example_column() -> None:
    with pytest.raises(InvalidInput, match="cannot describe"):
        infer_signature(pd.DataFrame({"x": [[1], [2]]}))
