"""The feature store: one definition for training and serving.

::

    store = milepost.features.FeatureStore("features.py")
    store.apply()
    train = store.get_historical_features(labels, ["customer_activity:monthly_spend"])
    store.materialize_incremental()
    store.get_online_features(["customer_activity:monthly_spend"], [{"customer_id": 7}])
"""

from milepost.features.api import FeatureStore
from milepost.features.definitions import (
    DatasetSource,
    Entity,
    FeatureView,
    Field,
    FileSource,
    OnDemandFeatureView,
    PushSource,
)
from milepost.features.materialize import Materialization, OnlineCoverage, ViewMaterialization
from milepost.features.repo import Definitions, PlanItem, load_definitions
from milepost.features.service import ConsistencyReport, FeatureService, OnlineResponse

__all__ = [
    "ConsistencyReport",
    "DatasetSource",
    "Definitions",
    "Entity",
    "FeatureService",
    "FeatureStore",
    "FeatureView",
    "Field",
    "FileSource",
    "Materialization",
    "OnDemandFeatureView",
    "OnlineCoverage",
    "OnlineResponse",
    "PlanItem",
    "PushSource",
    "ViewMaterialization",
    "load_definitions",
]
