"""Fairness audits on every metadata backend: fairlearn's numbers, flags, errors, storage."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    equalized_odds_ratio,
)
from sklearn.tree import DecisionTreeClassifier

import milepost
from milepost import Client, Runtime
from milepost.demo.data import LABEL, PROTECTED
from milepost.errors import InvalidInput, NotFound
from milepost.evaluation import GROUP_COLUMNS, SUMMARY_KEYS
from tests.contract.conftest import FEATURES


def _rows(group: Any, pos_hit: int, pos_miss: int, neg_hit: int, neg_miss: int) -> pd.DataFrame:
    """Rows of one group: ``x`` is the model's decision (it predicts x), ``y`` the label.

    pos_hit: y=1 predicted 1; pos_miss: y=1 predicted 0; neg_hit: y=0 predicted 1 (a false
    positive); neg_miss: y=0 predicted 0.
    """
    x = [1] * pos_hit + [0] * pos_miss + [1] * neg_hit + [0] * neg_miss
    y = [1] * (pos_hit + pos_miss) + [0] * (neg_hit + neg_miss)
    return pd.DataFrame({"x": x, "gender": [group] * len(x), "y": y})


#: A known bias: group a is selected twice as often as b; c is small; some rows lack gender.
BIASED = pd.concat(
    [
        _rows("a", 16, 4, 4, 16),  # selection 0.5, TPR 0.8, FPR 0.2, accuracy 0.8
        _rows("b", 8, 12, 2, 18),  # selection 0.25, TPR 0.4, FPR 0.1, accuracy 0.65
        _rows("c", 3, 2, 1, 4),  # selection 0.4, TPR 0.6, FPR 0.2, accuracy 0.7 (10 rows)
        _rows(None, 1, 1, 1, 1),  # selection 0.5, TPR 0.5, FPR 0.5, accuracy 0.5
    ],
    ignore_index=True,
)


@pytest.fixture
def decider(runtime: Runtime) -> str:
    """models:/decider/1 predicts exactly its input ``x`` (a one-split tree)."""
    frame = pd.DataFrame({"x": [0, 1] * 10})
    model = DecisionTreeClassifier(max_depth=1).fit(frame, frame["x"])
    with milepost.start_run(experiment="fairness"):
        milepost.log_model(model, "decider", input_example=frame.head(3))
    return "models:/decider/1"


def test_the_numbers_are_fairlearns_on_a_known_bias(decider: str, runtime: Runtime) -> None:
    result = milepost.audit_fairness(decider, BIASED, "y", ["gender"], min_group_size=15)
    by_group = result.by_group.set_index("group")
    assert list(result.by_group.columns) == list(GROUP_COLUMNS)
    assert by_group["count"].to_dict() == {"<null>": 4, "a": 40, "b": 40, "c": 10}
    assert by_group["positives"].to_dict() == {"<null>": 2, "a": 20, "b": 20, "c": 5}
    assert by_group["selection_rate"].to_dict() == {"<null>": 0.5, "a": 0.5, "b": 0.25, "c": 0.4}
    assert by_group["tpr"].to_dict() == {"<null>": 0.5, "a": 0.8, "b": 0.4, "c": 0.6}
    assert by_group["fpr"].to_dict() == {"<null>": 0.5, "a": 0.2, "b": 0.1, "c": 0.2}
    assert by_group["accuracy"].to_dict() == pytest.approx(
        {"<null>": 0.5, "a": 0.8, "b": 0.65, "c": 0.7}
    )
    # small groups, and groups whose rates rest on < 15 positives or negatives, are flagged
    assert by_group["unreliable"].to_dict() == {"<null>": True, "a": False, "b": False, "c": True}
    assert result.unreliable_groups == ["gender=<null>", "gender=c"]
    summary = result.summary["gender"]
    assert set(summary) == set(SUMMARY_KEYS)
    assert summary == pytest.approx(
        {
            "demographic_parity_difference": 0.25,  # 0.5 - 0.25
            "demographic_parity_ratio": 0.5,  # 0.25 / 0.5
            "equalized_odds_difference": 0.4,  # max(0.8 - 0.4, 0.5 - 0.1)
            "equalized_odds_ratio": 0.2,  # min(0.4 / 0.8, 0.1 / 0.5)
        }
    )
    # ... which is what fairlearn says on the same decisions, over every group
    s = BIASED["gender"].fillna("<null>")
    y, pred = BIASED["y"], BIASED["x"]
    assert summary["demographic_parity_difference"] == pytest.approx(
        demographic_parity_difference(y, pred, sensitive_features=s)
    )
    assert summary["demographic_parity_ratio"] == pytest.approx(
        demographic_parity_ratio(y, pred, sensitive_features=s)
    )
    assert summary["equalized_odds_difference"] == pytest.approx(
        equalized_odds_difference(y, pred, sensitive_features=s)
    )
    assert summary["equalized_odds_ratio"] == pytest.approx(
        equalized_odds_ratio(y, pred, sensitive_features=s)
    )
    assert result.positive_label == 1 and result.num_rows == 94 and result.dataset_ref is None


def test_the_default_group_size_flags_every_group_here(decider: str) -> None:
    result = milepost.audit_fairness(decider, BIASED, "y", ["gender"])
    assert result.min_group_size == 30
    # 40 rows but only 20 positives and 20 negatives: its rates rest on too few labels
    assert all(result.by_group["unreliable"])


def test_the_positive_label_can_be_either_class(runtime: Runtime) -> None:
    frame = BIASED.assign(y=np.where(BIASED["y"] == 1, "yes", "no"))
    train = pd.DataFrame({"x": [0, 1] * 10})
    model = DecisionTreeClassifier(max_depth=1).fit(train, np.where(train["x"] == 1, "yes", "no"))
    with milepost.start_run(experiment="fairness"):
        milepost.log_model(model, "words", input_example=train.head(3))
    default = milepost.audit_fairness("models:/words/1", frame, "y", ["gender"])
    assert default.positive_label == "yes"  # the model's second class
    assert default.summary["gender"]["demographic_parity_ratio"] == pytest.approx(0.5)
    flipped = milepost.audit_fairness(
        "models:/words/1", frame, "y", ["gender"], positive_label="no"
    )
    rates = flipped.by_group.set_index("group")["selection_rate"].to_dict()
    assert rates == pytest.approx({"<null>": 0.5, "a": 0.5, "b": 0.75, "c": 0.6})
    with pytest.raises(InvalidInput, match="positive_label 'maybe' is not a value of 'y'"):
        milepost.audit_fairness("models:/words/1", frame, "y", ["gender"], positive_label="maybe")


def test_a_missing_group_label_makes_equalized_odds_undefined(decider: str) -> None:
    frame = pd.concat([_rows("a", 5, 5, 5, 5), _rows("b", 0, 0, 3, 7)], ignore_index=True)
    result = milepost.audit_fairness(decider, frame, "y", ["gender"], min_group_size=1)
    summary = result.summary["gender"]
    assert summary["equalized_odds_difference"] is None
    assert summary["equalized_odds_ratio"] is None
    assert summary["demographic_parity_difference"] == pytest.approx(0.2)
    b = next(g for g in result.groups if g["group"] == "b")
    assert b["tpr"] is None and b["fpr"] == pytest.approx(0.3)
    assert pd.isna(result.by_group.set_index("group").loc["b", "tpr"])


@pytest.mark.parametrize(
    ("frame", "kwargs", "match"),
    [
        (BIASED, {"sensitive_features": ["gendr"]}, "no sensitive feature 'gendr'.*'gender'"),
        (BIASED, {"target": "label"}, "no target column 'label'"),
        (BIASED.head(0), {}, "has no rows"),
        (BIASED.assign(y=1), {}, "has one class \\(1\\)"),
        (BIASED.assign(y=np.linspace(0, 1, len(BIASED))), {}, "looks continuous"),
        (BIASED.assign(y=np.arange(len(BIASED)) % 3), {}, "needs a binary classifier"),
        (BIASED.assign(y=BIASED["y"].astype(float).where(BIASED.index > 0)), {}, "1 missing"),
        (BIASED, {"sensitive_features": []}, "sensitive_features is empty"),
        (BIASED, {"sensitive_features": ["gender", "gender"]}, "repeats a column"),
        (BIASED, {"sensitive_features": ["y"]}, "cannot be a sensitive feature too"),
        (BIASED, {"min_group_size": 0}, "min_group_size"),
        (BIASED, {"threshold": 1.5}, "threshold must be a probability"),
    ],
)
def test_bad_input_is_refused_clearly(
    decider: str, frame: pd.DataFrame, kwargs: dict[str, Any], match: str
) -> None:
    args: dict[str, Any] = {"target": "y", "sensitive_features": ["gender"], **kwargs}
    with pytest.raises(InvalidInput, match=match):
        milepost.get_runtime().evaluation.audit_fairness(decider, frame, **args)
    assert Client().list_fairness_audits(decider) == []


def test_audits_are_stored_and_audited(decider: str, runtime: Runtime) -> None:
    c = Client()
    first = c.audit_fairness(decider, BIASED, "y", ["gender"], min_group_size=15)
    second = c.audit_fairness(decider, BIASED.assign(g2=BIASED["gender"]), "y", ["gender", "g2"])
    stored = c.list_fairness_audits(decider)
    assert [a.audit_id for a in stored] == [second.audit_id, first.audit_id]
    assert stored[1] == first and stored[0].to_dict() == second.to_dict()
    assert c.get_fairness_audit(first.audit_id) == first
    assert stored[0].sensitive_features == ["gender", "g2"] and set(stored[0].summary) == {
        "gender",
        "g2",
    }
    event = c.list_audit_events(action="fairness.audit")[-1]
    assert event.object_type == "model_version" and event.object_id == "decider/1"
    assert event.after["audit_id"] == first.audit_id
    assert event.after["summary"] == first.summary
    assert event.actor == "tester"
    assert c.verify_audit().ok
    with pytest.raises(NotFound, match=r"Fairness audit 'f{32}' does not exist"):
        c.get_fairness_audit("f" * 32)
    assert c.list_fairness_audits(decider, limit=1) == [stored[0]]


def test_a_realistic_audit_on_a_registered_dataset(
    runtime: Runtime, churn_models: dict[str, Any], churn_frame: pd.DataFrame
) -> None:
    test = milepost.data.register("churn.test", churn_frame.iloc[2000:])
    with milepost.start_run(experiment="fairness"):
        milepost.log_model(churn_models["good"], "churn", input_example=churn_frame[FEATURES][:5])
    result = milepost.audit_fairness(
        "models:/churn/1", "churn.test@1", LABEL, [PROTECTED], threshold=0.2
    )
    assert result.dataset_ref == test.ref == "churn.test@1"
    groups = result.by_group.set_index("group")
    assert groups["count"].sum() == 1000 and set(groups.index) == {"female", "male", "nonbinary"}
    assert bool(groups.loc["nonbinary", "unreliable"]) and "gender=nonbinary" in (
        result.unreliable_groups
    )
    values = result.summary[PROTECTED]
    assert all(v is None or 0 <= v <= 1 for v in values.values())
    assert Client().list_fairness_audits("models:/churn/1")[0].dataset_ref == "churn.test@1"


def test_an_audit_stored_behind_the_service_is_named_by_verify(
    decider: str, runtime: Runtime
) -> None:
    import sqlalchemy as sa

    from milepost.stores.schema import fairness_audits

    milepost.audit_fairness(decider, BIASED, "y", ["gender"])
    assert Client().verify_audit().ok
    with runtime.db.write() as conn:
        row = dict(conn.execute(sa.select(fairness_audits)).mappings().one())
        conn.execute(sa.insert(fairness_audits).values({**row, "audit_id": "0" * 32}))
    problems = Client().verify_audit().problems
    assert [p.message for p in problems] == [
        "2 fairness audits exist but only 1 fairness.audit events are recorded: 1 was "
        "created without an event."
    ]
