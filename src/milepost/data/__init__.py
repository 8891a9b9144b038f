"""Data versioning and validation.

::

    v = milepost.data.register("customers", df)        # -> DatasetVersion customers@1
    v.to_pandas(); v.profile["age"]["mean"]
    milepost.log_input(v, role="train")                 # inside a run: lineage
    result = milepost.data.validate(v, "suites/customers.yaml", strict=True)
    milepost.data.diff("customers@1", "customers@2")
"""

from milepost.data.api import (
    diff,
    get,
    list_datasets,
    list_versions,
    register,
    runs_using,
    validate,
    versions,
)
from milepost.data.models import ColumnSchema, DatasetInput, DatasetRow, DatasetVersion
from milepost.data.results import ValidationResult
from milepost.data.service import DataService, DatasetDiff
from milepost.data.validation import (
    Between,
    CheckResult,
    Distribution,
    Expression,
    Freshness,
    InSet,
    Matches,
    NotNull,
    RowCount,
    Schema,
    Suite,
    Unique,
)

__all__ = [
    "Between",
    "CheckResult",
    "ColumnSchema",
    "DataService",
    "DatasetDiff",
    "DatasetInput",
    "DatasetRow",
    "DatasetVersion",
    "Distribution",
    "Expression",
    "Freshness",
    "InSet",
    "Matches",
    "NotNull",
    "RowCount",
    "Schema",
    "Suite",
    "Unique",
    "ValidationResult",
    "diff",
    "get",
    "list_datasets",
    "list_versions",
    "register",
    "runs_using",
    "validate",
    "versions",
]
