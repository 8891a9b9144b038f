"""The demo's feature definitions: a module like the one users keep in their repository.

``milepost features apply --repo milepost.demo.features`` registers them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from milepost.features import DatasetSource, Entity, FeatureView, Field

if TYPE_CHECKING:
    import pandas as pd

customer = Entity("customer", join_keys=["customer_id"], description="A subscriber.")


def activity_features(df: pd.DataFrame) -> pd.DataFrame:
    """Row-wise: the same code builds training data and serves online."""
    df["spend_per_ticket"] = df["monthly_spend"] / (1 + df["support_tickets"])
    return df


customer_profile = FeatureView(
    name="customer_profile",
    entity=customer,
    source=DatasetSource("customers"),
    timestamp_field="event_timestamp",
    ttl=timedelta(days=30),
    schema=[
        Field("age", "int"),
        Field("tenure_months", "int"),
        Field("plan", "string"),
        Field("region", "string"),
        Field("payment_method", "string"),
    ],
    description="Who the customer is.",
)

customer_activity = FeatureView(
    name="customer_activity",
    entity=customer,
    source=DatasetSource("customers"),
    timestamp_field="event_timestamp",
    ttl=timedelta(days=30),
    schema=[
        Field("monthly_spend"),
        Field("support_tickets", "int"),
        Field("sessions_last_30d", "int"),
        Field("late_payments", "int"),
        Field("discount_pct"),
        Field("spend_per_ticket"),
    ],
    transform=activity_features,
    description="How the customer uses the service.",
)

FEATURES = [f"customer_profile:{f.name}" for f in customer_profile.schema] + [
    f"customer_activity:{f.name}" for f in customer_activity.schema
]
