"""Feature definitions and sample data of a small project, as ``milepost init`` writes one:
a feature view with a row-wise transform, and an on-demand view whose request column
(``basket_value``) is also a column of the labels dataset. Used by the retraining tests
of a regression model and of on-demand features (``FeatureStore("tests.unit._shop_features")``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from milepost.features import DatasetSource, Entity, FeatureView, Field, OnDemandFeatureView

CUSTOMERS = "shop.customers"
LABELS = "shop.labels"

customer = Entity("customer", join_keys=["customer_id"], description="A shopper.")


def activity(df: pd.DataFrame) -> pd.DataFrame:
    """Row-wise: spend per session."""
    df["spend_per_session"] = df["monthly_spend"] / (1 + df["sessions"])
    return df


shop_activity = FeatureView(
    name="shop_activity",
    entity=customer,
    source=DatasetSource(CUSTOMERS),
    timestamp_field="event_timestamp",
    ttl=timedelta(days=30),
    schema=[
        Field("age", "int"),
        Field("sessions", "int"),
        Field("monthly_spend"),
        Field("spend_per_session"),
    ],
    transform=activity,
)


def basket_features(df: pd.DataFrame) -> pd.DataFrame:
    """At request time: the basket against the usual monthly spend."""
    df["basket_share"] = df["basket_value"] / (1.0 + df["shop_activity__monthly_spend"])
    return df


basket = OnDemandFeatureView(
    name="basket",
    sources=[shop_activity],
    request_schema=[Field("basket_value")],
    schema=[Field("basket_share")],
    transform=basket_features,
)

FEATURES = ",".join(
    [f"shop_activity:{f.name}" for f in shop_activity.schema] + ["basket:basket_share"]
)


def sample(n: int = 600, seed: int = 0, now: datetime | None = None) -> dict[str, pd.DataFrame]:
    """Customers (one snapshot each, over the 40 days before ``now``, default the current
    hour: online reads honour the views' TTL) and labels a few hours later: the basket's
    value (request data), next month's spend (a number) and churn."""
    rng = np.random.default_rng(seed)
    ids = np.arange(1, n + 1)
    end = pd.Timestamp.now(tz="UTC").floor("h") if now is None else pd.Timestamp(now)
    start = end - pd.Timedelta(days=40)
    seen = start + pd.to_timedelta(rng.uniform(0, 39 * 24, n), unit="h")
    age = rng.integers(18, 80, n)
    sessions = rng.poisson(8, n)
    spend = np.round(rng.gamma(4.0, 12.0, n), 2)
    customers = pd.DataFrame(
        {
            "customer_id": ids,
            "event_timestamp": seen,
            "age": age,
            "sessions": sessions,
            "monthly_spend": spend,
        }
    )
    basket_value = np.round(rng.gamma(2.0, 15.0, n), 2)
    share = basket_value / (1.0 + spend)
    spend_next = 0.7 * spend + 2.5 * sessions + 8.0 * share + rng.normal(0, 3, n)
    churned = (share + rng.normal(0, 0.3, n) > np.median(share)).astype(int)
    labels = pd.DataFrame(
        {
            "customer_id": ids,
            "event_timestamp": seen + pd.to_timedelta(rng.uniform(1, 12, n), unit="h"),
            "basket_value": basket_value,
            "spend_next": np.round(spend_next, 2),
            "churned": churned,
        }
    )
    return {CUSTOMERS: customers, LABELS: labels}
