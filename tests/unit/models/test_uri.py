from __future__ import annotations

import pytest

from milepost.errors import InvalidInput
from milepost.models.uri import ModelRef, parse_model_uri


@pytest.mark.parametrize(
    ("uri", "ref"),
    [
        ("models:/churn/3", ModelRef("churn", version=3)),
        ("models:/churn/Production", ModelRef("churn", stage="Production")),
        ("models:/churn/staging", ModelRef("churn", stage="Staging")),
        ("models:/churn/latest", ModelRef("churn", stage="latest")),
        ("models:/churn.v2@champion", ModelRef("churn.v2", alias="champion")),
    ],
)
def test_parses(uri: str, ref: ModelRef) -> None:
    assert parse_model_uri(uri) == ref


@pytest.mark.parametrize(
    "uri",
    [
        "churn/3",
        "models:/churn",
        "models:/churn/0",
        "models:/churn/prod",
        "models:/../x/1",
        "models:/churn@",
    ],
)
def test_refuses(uri: str) -> None:
    with pytest.raises(InvalidInput):
        parse_model_uri(uri)
