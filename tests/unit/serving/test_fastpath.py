"""The ONNX hot path gives the answers and the errors of the general path.

Rows that fit the signature go from JSON straight into NumPy (:class:`FastFeed`); every
other row (a missing column, a null, a wrong type, a value out of range) takes the
general path, so the client gets the same 400 naming the column as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

import milepost
from milepost.demo.data import CATEGORICAL, LABEL, NUMERIC
from milepost.demo.training import preprocess
from milepost.errors import InvalidInput
from milepost.models.signature import ColumnSpec, Signature
from milepost.serving._fastpath import FastFeed
from milepost.serving.engine import VariantRuntime
from milepost.serving.spec import Variant

FEATURES = NUMERIC + CATEGORICAL


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Any]:
    runtime = milepost.configure(home=tmp_path / "home", user="tester")
    yield runtime
    milepost.reset()


@pytest.fixture
def runtime(rt: Any, churn_frame: pd.DataFrame) -> VariantRuntime:
    """The demo pipeline's ONNX twin, loaded as a replica loads it."""
    train = churn_frame.iloc[:1500]
    pipe = Pipeline([("prep", preprocess(True)), ("model", LogisticRegression(max_iter=500))])
    pipe.fit(train[FEATURES], train[LABEL])
    with milepost.start_run(experiment="fastpath"):
        mv = milepost.log_model(pipe, "churn", input_example=train[FEATURES].head(5), onnx=True)
    assert mv.has_onnx, mv.onnx
    loaded = rt.models.load(mv.uri, prefer_onnx=True)
    variant = Variant(name="churn-v1", model="churn", version=mv.version, role="primary")
    out = VariantRuntime(variant, loaded, None)
    assert out._fast is not None  # the demo pipeline fits the fast path
    return out


def _rows(frame: pd.DataFrame, n: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = frame[FEATURES].iloc[2000 : 2000 + n].to_dict("records")
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in rows]


@pytest.mark.parametrize("n", [1, 7])
def test_valid_rows_get_the_general_paths_answer(
    runtime: VariantRuntime, churn_frame: pd.DataFrame, n: int
) -> None:
    rows = _rows(churn_frame, n)
    assert runtime._fast is not None and runtime._fast.feed(rows) is not None
    fast = runtime.predict(rows)
    general = runtime._predict(rows)
    assert fast[0] == general[0]
    assert fast[1] is not None and general[1] is not None
    np.testing.assert_allclose(fast[1], general[1], rtol=0, atol=0)
    assert len(fast[0]) == n


class _PublicSession:
    """An onnxruntime ``InferenceSession`` seen only through its documented methods.

    Any other attribute (such as the private native binding ``_sess``) is missing, and
    asking for it is recorded in :attr:`touched`.
    """

    def __init__(self, session: Any) -> None:
        self._real = session
        self.touched: list[str] = []
        self.runs = 0

    def get_inputs(self) -> Any:
        return self._real.get_inputs()

    def get_outputs(self) -> Any:
        return self._real.get_outputs()

    def run(self, output_names: Any, input_feed: Any, run_options: Any = None) -> Any:
        self.runs += 1
        return self._real.run(output_names, input_feed, run_options)

    def __getattr__(self, name: str) -> Any:  # only names not defined above get here
        self.touched.append(name)
        raise AttributeError(name)


def test_the_fast_path_uses_only_the_public_session_api_and_no_dataframe(
    runtime: VariantRuntime, churn_frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A private onnxruntime binding may change in any release; a DataFrame per request
    is the cost the fast path exists to avoid."""
    assert runtime.onnx is not None
    public = _PublicSession(runtime.onnx.session)
    monkeypatch.setattr(runtime.onnx, "session", public)
    served = VariantRuntime(runtime.variant, runtime.loaded, None)
    rows = _rows(churn_frame, 3)
    frames: list[int] = []
    real_init = pd.DataFrame.__init__

    def counting_init(self: pd.DataFrame, *args: Any, **kwargs: Any) -> None:
        frames.append(1)
        real_init(self, *args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(pd.DataFrame, "__init__", counting_init)
        labels, proba = served.predict(rows)
    assert public.touched == []
    assert public.runs == 1  # the fast path answered (the general path would run again)
    assert frames == []
    general = served._predict(rows)
    assert labels == general[0]
    assert proba is not None and general[1] is not None
    np.testing.assert_allclose(proba, general[1], rtol=0, atol=0)


def _refusal(runtime: VariantRuntime, rows: list[dict[str, Any]]) -> str:
    with pytest.raises(InvalidInput) as caught:
        runtime.predict(rows)
    return caught.value.message


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"age": None}, "column 'age' is null"),
        ({"age": "forty"}, "column 'age' is str 'forty'"),
        ({"age": True}, "column 'age' is bool True"),
        ({"plan": 3}, "column 'plan' is int 3"),
        ({"age": 2**64}, "outside the 64-bit integer range"),
        ({"tenure_months": 1.5}, "column 'tenure_months' is float 1.5"),
    ],
)
def test_bad_values_are_refused_naming_the_column(
    runtime: VariantRuntime,
    churn_frame: pd.DataFrame,
    change: dict[str, Any],
    message: str,
) -> None:
    assert runtime.signature is not None
    types = {c.name: c.type for c in runtime.signature.inputs}
    assert types["age"] == "integer" and types["plan"] == "string"
    rows = _rows(churn_frame, 3)
    rows[1] = {**rows[1], **change}
    assert runtime._fast is not None and runtime._fast.feed(rows) is None
    assert message in _refusal(runtime, rows)


def test_a_missing_column_is_refused_with_the_columns_the_model_expects(
    runtime: VariantRuntime, churn_frame: pd.DataFrame
) -> None:
    rows = _rows(churn_frame, 2)
    del rows[1]["region"]
    assert runtime._fast is not None and runtime._fast.feed(rows) is None
    message = _refusal(runtime, rows)
    assert "Row 1 is missing column 'region'" in message


def test_values_the_twin_is_not_trusted_on_go_to_the_native_model(
    runtime: VariantRuntime, churn_frame: pd.DataFrame
) -> None:
    """A float beyond float32 passes the signature, but the twin must not answer it."""
    rows = _rows(churn_frame, 1)
    float_column = next(c.name for c in runtime.signature.inputs if c.type == "float")  # type: ignore[union-attr]
    rows[0][float_column] = 1e300
    assert runtime._fast is not None and runtime._fast.feed(rows) is None
    native = runtime.loaded.native.predict(pd.DataFrame(rows)).tolist()
    assert runtime.predict(rows)[0] == native


def test_models_outside_the_fast_path_compile_to_none() -> None:
    class Input:
        def __init__(self, name: str, type_: str) -> None:
            self.name, self.type = name, type_

    sig = Signature([ColumnSpec("a", "float"), ColumnSpec("b", "string")])
    assert FastFeed.compile(sig, [Input("a", "tensor(double)"), Input("b", "tensor(string)")])
    assert FastFeed.compile(None, [Input("a", "tensor(double)")]) is None
    assert FastFeed.compile(sig, [Input("input", "tensor(float)")]) is None  # one matrix
    assert FastFeed.compile(sig, [Input("a", "tensor(bool)"), Input("b", "tensor(string)")]) is None
    assert (
        FastFeed.compile(sig, [Input("a", "tensor(string)"), Input("b", "tensor(string)")]) is None
    )
    booleans = Signature([ColumnSpec("a", "boolean"), ColumnSpec("b", "string")])
    assert (
        FastFeed.compile(booleans, [Input("a", "tensor(double)"), Input("b", "tensor(string)")])
        is None
    )
