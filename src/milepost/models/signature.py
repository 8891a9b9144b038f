"""Model signatures: what goes in and what comes out, inferred and enforced.

A signature lists input columns (name, type, nullable) and outputs. It is inferred from
an ``input_example`` when not given, stored with the model version, and enforced by
``predict``: a missing column, an extra column (unless ``extra_columns="ignore"``), a
null in a non-nullable column, or a value of the wrong type is refused with the column
named. Safe widening is allowed (int -> float, narrower ints -> wider ints); narrowing
is not.

A column is nullable only if the model can predict with a null in it: at log time each
column the example leaves nullable is probed (:func:`refuse_unhandled_nulls`), so a
model that does not handle missing values gets a signature that refuses them, with the
column named, instead of the model's own error.

Types: ``integer``, ``float``, ``boolean``, ``string``, ``datetime``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from milepost import _validate as check
from milepost._records import record_dict, short
from milepost.errors import InvalidInput

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd

__all__ = [
    "EXAMPLE_ROWS",
    "ColumnSpec",
    "Signature",
    "check_signature",
    "enforce",
    "example_and_signature",
    "infer_signature",
    "refuse_unhandled_nulls",
    "refuses_null",
    "to_frame",
]

ColumnType = Literal["integer", "float", "boolean", "string", "datetime"]

#: How many rows of an input example a model version keeps.
EXAMPLE_ROWS = 5


@dataclass(frozen=True)
class ColumnSpec:
    """One input or output column."""

    name: str
    type: ColumnType
    nullable: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return record_dict(self)

    def __repr__(self) -> str:
        return f"ColumnSpec({self.name} {self.type}{', nullable' if self.nullable else ''})"


@dataclass(frozen=True)
class Signature:
    """Inputs and outputs of a model."""

    inputs: list[ColumnSpec]
    outputs: list[ColumnSpec] = field(default_factory=list)

    @property
    def input_names(self) -> list[str]:
        """Input column names in order."""
        return [c.name for c in self.inputs]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return record_dict(self)

    def __repr__(self) -> str:
        ins = short(", ".join(self.input_names))
        return f"Signature({len(self.inputs)} inputs ({ins}) -> {len(self.outputs)} outputs)"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Signature:
        """Inverse of :meth:`to_dict`."""
        return cls(
            inputs=[ColumnSpec(**c) for c in d.get("inputs", [])],
            outputs=[ColumnSpec(**c) for c in d.get("outputs", [])],
        )


def _kind(series: pd.Series) -> ColumnType:
    import pandas as pd

    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(dtype):
        values = series.dropna()
        if values.map(lambda v: isinstance(v, str)).all():
            return "string"
    raise InvalidInput(
        f"Column {series.name!r} has type {dtype}, which a signature cannot describe.",
        hint="Use numbers, booleans, strings or datetimes in the input example.",
    )


def to_frame(data: Any, *, what: str = "input") -> pd.DataFrame:
    """A DataFrame from a DataFrame, a dict of columns, a list of row dicts or a 2-D array."""
    import numpy as np
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, dict):
        try:
            return pd.DataFrame(
                data
                if all(isinstance(v, (list, tuple, np.ndarray, pd.Series)) for v in data.values())
                else [data]
            )
        except ValueError as exc:
            raise InvalidInput(f"Cannot read the {what} as columns: {exc}.") from exc
    if isinstance(data, list) and all(isinstance(r, dict) for r in data):
        try:
            return pd.DataFrame(data)
        except ValueError as exc:  # UnicodeEncodeError too: text pandas cannot store
            raise InvalidInput(f"Cannot read the {what} as rows: {exc}.") from exc
    if hasattr(data, "to_pandas"):
        frame = data.to_pandas()
        assert isinstance(frame, pd.DataFrame)
        return frame
    if isinstance(data, np.ndarray) and data.ndim == 2:
        return pd.DataFrame(data, columns=[f"f{i}" for i in range(data.shape[1])])
    raise InvalidInput(
        f"The {what} must be a DataFrame, a dict of columns or a list of row dicts, "
        f"got {type(data).__name__}."
    )


def infer_signature(input_example: Any, output_example: Any = None) -> Signature:
    """A signature from example inputs (and outputs, when given).

    Float columns are nullable (NaN is a float's missing value); other columns are
    nullable when the example has a null in them.
    """
    import numpy as np
    import pandas as pd

    frame = to_frame(input_example, what="input example")
    check.unique_columns(frame, "The input example")
    if frame.empty:
        raise InvalidInput("The input example has no rows; give at least one.")
    inputs = []
    for name in frame.columns:
        kind = _kind(frame[name])
        inputs.append(
            ColumnSpec(str(name), kind, kind == "float" or bool(frame[name].isna().any()))
        )
    outputs: list[ColumnSpec] = []
    if output_example is not None:
        try:
            out = np.asarray(output_example)
            series = pd.Series(out.ravel() if out.ndim <= 1 else out[:, 0], name="prediction")
        except (TypeError, ValueError, IndexError) as exc:  # ValueError: text pandas refuses
            raise InvalidInput(f"Cannot read the output example as predictions: {exc}.") from exc
        outputs.append(ColumnSpec("prediction", _kind(series), bool(series.isna().any())))
    return Signature(inputs=inputs, outputs=outputs)


def refuses_null(predict: Callable[[pd.DataFrame], Any], row: pd.DataFrame, column: str) -> bool:
    """True when ``predict`` fails on ``row`` (one row it predicts) with ``column`` null.

    Numbers become NaN (as pandas holds a missing number), anything else None.
    """
    import numpy as np
    import pandas as pd

    probe = row.copy()
    if pd.api.types.is_numeric_dtype(probe[column]) and not pd.api.types.is_bool_dtype(
        probe[column]
    ):
        probe[column] = np.full(len(probe), np.nan)
    else:
        probe[column] = pd.Series([None] * len(probe), dtype=object, index=probe.index)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a warning is not a refusal
        try:
            predict(probe)
        except Exception:
            return True
    return False


def refuse_unhandled_nulls(
    signature: Signature, example: pd.DataFrame, predict: Callable[[pd.DataFrame], Any]
) -> Signature:
    """The signature with each nullable column the model cannot take a null in made
    required, found by predicting the example's first row with that column null."""
    row = example.head(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            predict(row)
        except Exception:  # nothing to compare with: keep what the example says
            return signature
    inputs = [
        ColumnSpec(c.name, c.type, False)
        if c.nullable and c.name in row.columns and refuses_null(predict, row, c.name)
        else c
        for c in signature.inputs
    ]
    return Signature(inputs=inputs, outputs=signature.outputs)


def check_signature(signature: Any) -> Signature | None:
    """``log_model``'s ``signature`` argument: None or a :class:`Signature`."""
    if signature is not None and not isinstance(signature, Signature):
        raise InvalidInput(
            f"signature must be a Signature, got {type(signature).__name__}.",
            hint="Build one with milepost.models.infer_signature(...), or pass "
            "input_example instead.",
        )
    return signature


def example_and_signature(
    model: Any, flavor: str, input_example: Any, signature: Signature | None
) -> tuple[pd.DataFrame | None, Signature | None]:
    """``log_model``'s input example (its first rows) and signature: the one given, or
    one inferred from the example and the model's prediction of it (ONNX: the inputs
    only), each nullable column the model cannot take a null in made required.

    The same for the embedded service and the remote client, which infers it before
    uploading.

    Raises:
        InvalidInput: the example is not tabular, or the model cannot predict it.
    """
    example = None
    if input_example is not None:
        example = to_frame(input_example, what="input example").head(EXAMPLE_ROWS)
    if signature is None and example is not None:
        try:
            output = model.predict(example) if flavor != "onnx" else None
        except Exception as exc:
            raise InvalidInput(
                f"The model cannot predict its own input example: {type(exc).__name__}: {exc}",
                hint="Pass an input_example with the columns the model was trained on.",
            ) from exc
        signature = infer_signature(example, output)
        if flavor != "onnx":  # say which columns the model really takes a null in
            signature = refuse_unhandled_nulls(signature, example, model.predict)
    return example, signature


def _all(series: pd.Series, test: Any) -> bool:
    return bool(series.dropna().map(test).all())


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _cast(series: pd.Series, spec: ColumnSpec) -> pd.Series:
    """The column converted to the signature's type, or InvalidInput naming it."""
    import pandas as pd

    have = series.dtype
    types = pd.api.types
    is_object = have == object  # noqa: E721 - values arriving as Python objects (JSON)
    target: str | None = None
    if spec.type == "float":
        ok = (types.is_numeric_dtype(have) and not types.is_bool_dtype(have)) or (
            is_object and _all(series, _is_number)
        )
        target = "float64"
    elif spec.type == "integer":
        ok = types.is_integer_dtype(have) or (is_object and _all(series, _is_int))
        if ok and is_object:
            target = "Int64" if series.isna().any() else "int64"
    elif spec.type == "boolean":
        ok = types.is_bool_dtype(have) or (
            is_object and _all(series, lambda v: isinstance(v, bool))
        )
    elif spec.type == "string":
        ok = (isinstance(have, pd.CategoricalDtype) or types.is_string_dtype(have)) and _all(
            series, lambda v: isinstance(v, str)
        )
    else:
        ok = types.is_datetime64_any_dtype(have)
    if not ok:
        detail = (
            " (integers were expected; floats are not narrowed)"
            if spec.type == "integer" and types.is_float_dtype(have)
            else ""
        )
        raise InvalidInput(
            f"Column {spec.name!r} has type {have}{detail}, but the model expects {spec.type}.",
            hint="Convert the column, or log the model again with a matching input example.",
        )
    return series.astype(target) if target else series  # type: ignore[call-overload]


def enforce(
    data: Any, signature: Signature, *, extra_columns: Literal["error", "ignore"] = "error"
) -> pd.DataFrame:
    """Check and align input to the signature: column order, types, nulls.

    Raises:
        InvalidInput: naming the first offending column.
    """
    import numpy as np
    import pandas as pd

    frame = to_frame(data)
    expected = signature.input_names
    missing = [c for c in expected if c not in frame.columns]
    if missing:
        raise InvalidInput(
            f"Input is missing column {missing[0]!r}"
            + (f" (and {len(missing) - 1} more: {missing[1:4]})" if len(missing) > 1 else "")
            + ".",
            hint="The model expects: " + ", ".join(expected) + ".",
        )
    extra = [str(c) for c in frame.columns if c not in expected]
    if extra and extra_columns == "error":
        raise InvalidInput(
            f"Input has column {extra[0]!r}, which the model does not take"
            + (f" (and {len(extra) - 1} more)" if len(extra) > 1 else "")
            + ".",
            hint="Drop it, or load the model with extra_columns='ignore'.",
        )
    out = {}
    for spec in signature.inputs:
        series = frame[spec.name]
        if not spec.nullable and series.isna().any():
            row = int(np.flatnonzero(series.isna().to_numpy())[0])
            raise InvalidInput(
                f"Column {spec.name!r} has a null (row {row}), but the model requires a value.",
                hint="Fill it before predicting.",
            )
        out[spec.name] = _cast(series, spec)
    return pd.DataFrame(out, index=frame.index)
