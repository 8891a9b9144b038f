"""Transforms found by their code, and what a transform computes, read from its code."""

from __future__ import annotations

import importlib.util
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from milepost.errors import InvalidInput
from milepost.features import transforms
from milepost.features.transforms import (
    Origin,
    StoredTransform,
    code_fingerprint,
    derived_features,
)

FEATURES = ["spend", "tickets", "ratio"]


def _code(text: str) -> str:
    return textwrap.dedent(text).strip()


def _define(text: str, where: Path) -> Any:
    """The function ``text`` defines, imported from a file (its source is readable)."""
    path = where / f"m{uuid.uuid4().hex}.py"
    path.write_text(_code(text) + "\n")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return next(v for k, v in vars(module).items() if callable(v) and not k.startswith("_"))


RATIO = """
    def ratio(df):
        df["ratio"] = df["spend"] / (1 + df["tickets"])
        return df
"""


def test_the_fingerprint_ignores_name_docstring_comments_and_layout() -> None:
    renamed = '''
        def kept_for_v1(df):
            """The ratio, as v1 computed it."""
            # a comment
            df["ratio"] = df["spend"] / (1 +  df["tickets"])
            return df
    '''
    assert code_fingerprint(_code(RATIO)) == code_fingerprint(_code(renamed))
    changed = RATIO.replace("1 +", "2 +")
    assert code_fingerprint(_code(RATIO)) != code_fingerprint(_code(changed))
    # a lambda inside a longer line is compared by its text
    assert code_fingerprint("transform=lambda df: df,") != code_fingerprint(_code(RATIO))


def test_find_returns_a_remembered_function_with_the_same_code(tmp_path: Path) -> None:
    unique = RATIO.replace("1 +", f"{uuid.uuid4().int % 1000} + 1 +")  # no other test's body
    assert transforms.find(_code(unique)) is None
    fn = _define(unique.replace("def ratio", "def renamed"), tmp_path)
    transforms.remember([fn])
    assert transforms.find(_code(unique)) is fn


@pytest.mark.parametrize(
    ("body", "derived"),
    [
        ('df["ratio"] = df["spend"] / 2\n    return df', {"ratio"}),
        ('df.loc[df["spend"] > 0, "ratio"] = 1.0\n    return df', {"ratio"}),
        ('df[["ratio", "tickets"]] = 0\n    return df', {"ratio", "tickets"}),
        ("df = df.copy()\n    return df.assign(ratio=df.spend * 2)", {"ratio"}),
        ('df.insert(0, "ratio", 1.0)\n    return df', {"ratio"}),
        ('df["n"] = len(df)\n    return df', set()),
        # effects the code does not name: every feature counts as derived
        ("return df.fillna(0)", set(FEATURES)),
        ("df.fillna(0, inplace=True)\n    return df", set(FEATURES)),
        ("for c in ['ratio']:\n        df[c] = 1\n    return df", set(FEATURES)),
        ("helper(df)\n    return df", set(FEATURES)),
        ("out = df\n    return out", set(FEATURES)),
        ("df.iloc[:, 0] = 1\n    return df", set(FEATURES)),
    ],
)
def test_derived_features_are_read_conservatively(body: str, derived: set[str]) -> None:
    code = f"def t(df):\n    {body}"
    assert derived_features(code, FEATURES) == derived


def test_a_stored_transform_without_code_names_its_version_and_file(tmp_path: Path) -> None:
    body = RATIO.replace("1 +", f"0 * {uuid.uuid4().int % 1000} + 7 +")
    code = _code(body)
    origin = Origin.of({"file": "features.py", "line": 3, "function": "ratio", "commit": "a" * 40})
    stored = StoredTransform(code, "activity:v1", tuple(FEATURES), origin)
    with pytest.raises(InvalidInput) as refused:
        stored(pd.DataFrame({"spend": [1.0], "tickets": [0], "ratio": [0.0]}))
    error = refused.value
    assert error.message.startswith("activity:v1: feature 'ratio' is computed by a transform")
    assert "function ratio in features.py, line 3, at git commit aaaaaaaaaaaa" in error.message
    assert "Readable without it: spend, tickets." in error.message
    assert f"git show {'a' * 12}:features.py" in (error.hint or "")
    # once code with that fingerprint is loaded, it runs
    transforms.remember([_define(body, tmp_path)])
    out = stored(pd.DataFrame({"spend": [14.0], "tickets": [0], "ratio": [0.0]}))
    assert out["ratio"].tolist() == [2.0]
    # versions applied before origins were recorded still get a useful message
    assert "before Milepost recorded" in Origin.of(None).describe()
