"""The promotion policy's ``deploy`` section: defaults, round trips, and clear refusals."""

from __future__ import annotations

import math
from typing import Any

import pytest

import milepost
from milepost.errors import InvalidInput
from milepost.promotion import DeployPolicy, PromotionPolicy

AUTO = {
    "automatic": True,
    "endpoint": "churn",
    "strategy": "canary",
    "steps": [25, 50, 100],
    "min_seconds": 2,
    "min_requests": 50,
}


def test_default_is_not_automatic_and_says_so_briefly() -> None:
    policy = PromotionPolicy.from_dict({"production": [{"kind": "approval"}]})
    assert policy.deploy == DeployPolicy() and not policy.deploy.automatic
    assert policy.to_dict()["deploy"] == {"automatic": False}
    assert PromotionPolicy.from_dict({"production": [{"kind": "approval"}]}) == policy
    assert "deploy" not in repr(policy)


def test_round_trip_through_yaml_and_the_store(tmp_path: Any) -> None:
    policy = PromotionPolicy.from_dict({"deploy": AUTO})
    assert policy.deploy.canary_settings() == {
        "steps": [25.0, 50.0, 100.0],
        "min_seconds": 2.0,
        "min_requests": 50,
    }
    assert PromotionPolicy.from_yaml(policy.to_yaml()) == policy
    assert "automatic canary on 'churn': 25% → 50% → 100%" in repr(policy)
    import pandas as pd
    from sklearn.dummy import DummyClassifier

    milepost.configure(home=tmp_path / "home", user="tester")
    X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    with milepost.start_run():
        milepost.log_model(DummyClassifier().fit(X, [0, 1, 0, 1]), "churn", input_example=X)
    client = milepost.Client()
    client.set_promotion_policy("churn", policy)  # a Python object is re-checked, kept
    assert milepost.get_runtime().promotion.get_policy("churn").deploy == policy.deploy
    client.set_promotion_policy("churn", policy.to_yaml())
    assert milepost.get_runtime().promotion.get_policy("churn") == policy


def test_canary_thresholds_reach_the_canary_policy() -> None:
    from milepost.serving import CanaryPolicy

    deploy = DeployPolicy.parse({**AUTO, "max_p99_ratio": 3, "max_error_rate_increase": 0.02})
    canary = CanaryPolicy(**deploy.canary_settings())
    assert (canary.max_p99_ratio, canary.max_error_rate_increase) == (3.0, 0.02)
    assert canary.steps == [25.0, 50.0, 100.0]


@pytest.mark.parametrize(
    ("deploy", "match"),
    [
        ({"automatic": True}, r"deploy: automatic deployment needs an endpoint"),
        ({"automatic": "yes", "endpoint": "e"}, r"deploy: automatic: .*boolean.*'yes'"),
        ({"automaitc": True}, r"unknown setting\(s\) 'automaitc'.*Did you mean 'automatic'"),
        ({"steps": [50, 25]}, r"deploy: steps: .*must rise from above 0 to at most 100"),
        ({"steps": [0, 100]}, r"must rise from above 0"),
        ({"steps": [50, 150]}, r"at most 100"),
        ({"steps": []}, r"deploy: steps: .*at least 1"),
        ({"steps": ["50"]}, r"deploy: steps.0: .*valid number"),
        ({"min_seconds": math.nan}, r"deploy: min_seconds: .*finite"),
        ({"min_seconds": -1}, r"min_seconds: .*greater than or equal to 0"),
        ({"min_requests": 0}, r"min_requests: .*greater than or equal to 1"),
        ({"min_requests": 2.5}, r"min_requests: .*valid integer"),
        ({"max_p99_ratio": 0}, r"max_p99_ratio: .*greater than 0"),
        ({"strategy": "rolling"}, r"deploy: strategy: .*'canary'"),
        ({"endpoint": "a b"}, r"'a b' is not an endpoint name"),
        ([1], r"Policy section 'deploy' must be a mapping, got \[1\]"),
        ("automatic", r"must be a mapping"),
    ],
)
def test_bad_deploy_sections_are_refused(deploy: Any, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        PromotionPolicy.from_dict({"deploy": deploy})


def test_unknown_section_names_deploy_among_the_choices() -> None:
    with pytest.raises(InvalidInput, match=r"use staging, production, .*deploy.*'deploy'"):
        PromotionPolicy.from_dict({"deplyo": AUTO})
