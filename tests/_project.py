"""A small Milepost project written into a test's directory (the tests of
:mod:`milepost.project`: ``check project``, the sandbox, ``check consistency``).

``write_project(tmp_path, monkeypatch)`` writes ``milepost.toml`` with a ``[project]``
table, a package under ``src/`` (features with a row-wise transform and an on-demand view
with a request column, NumPy sample data, a trivial pipeline, a train function), a
policy, triggers and test directories, and puts ``src/`` on ``sys.path``. The package's
name is unique per call, so tests never share an imported module.
"""

from __future__ import annotations

import textwrap
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

FEATURES = """
from datetime import timedelta

from milepost.features import DatasetSource, Entity, FeatureView, Field, OnDemandFeatureView

customer = Entity("customer", join_keys=["customer_id"])


def spend_features(df):
    df["spend_per_ticket"] = df["monthly_spend"] / (1 + df["support_tickets"])
    return df


activity = FeatureView(
    name="activity",
    entity=customer,
    source=DatasetSource("{package}.customers"),
    timestamp_field="event_timestamp",
    ttl=timedelta(days=30),
    schema=[Field("monthly_spend"), Field("support_tickets", "int"), Field("spend_per_ticket")],
    transform=spend_features,
)


def basket_features(df):
    df["spend_share"] = df["activity__monthly_spend"] / {denominator}
    return df


basket = OnDemandFeatureView(
    name="basket",
    sources=[activity],
    request_schema=[Field("basket_value")],
    schema=[Field("spend_share")],
    transform=basket_features,
)
"""

#: The row-wise denominator, and one that reads a statistic of the whole batch (the
#: same value offline over every row; a different one online, one row per call).
ROW_WISE = 'df["basket_value"]'
BATCH_MEAN = 'df["basket_value"].mean()'

DATA = """
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

#: The data's "now" (fixed: the sample is the same on every run)
NOW = {now}


def sample(seed: int = 0, customers: int = {customers}) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ids = np.arange(1, customers + 1)
    snapshots = []
    for days in (20, 10, 2):
        snapshots.append(
            pd.DataFrame(
                {{
                    "customer_id": ids,
                    "event_timestamp": pd.Timestamp(NOW - timedelta(days=days)),
                    "monthly_spend": rng.gamma(2.0, 40.0, customers).round(2),
                    "support_tickets": rng.poisson(1.5, customers),
                }}
            )
        )
    labels = pd.DataFrame(
        {{
            "customer_id": ids,
            "event_timestamp": pd.Timestamp(NOW - timedelta(days=1)),
            "basket_value": rng.uniform(10.0, 200.0, customers).round(2),
            "churned": rng.integers(0, 2, customers),
        }}
    )
    return {{
        "{package}.customers": pd.concat(snapshots, ignore_index=True),
        "{package}.labels": labels,
    }}
"""

PIPELINE = """
import os

import milepost
import pandas as pd
from milepost.pipelines import pipeline, step


@step
def doubled(n: int) -> int:
    # runs in a worker process beside tripled: it writes to the stores it was given
    frame = pd.DataFrame({"n": [n * 2], "pid": [os.getpid()]})
    milepost.data.register("PACKAGE.doubled", frame)
    return n * 2


@step
def tripled(n: int) -> int:
    return n * 3


@step
def total(a: int, b: int) -> int:
    return a + b


@pipeline
def release(n: int = 3) -> int:
    return total(doubled(n), tripled(n))
"""

TRAIN = """
def fit(X, y):
    return {"rows": len(X)}
"""

POLICY = """
staging:
  - {kind: data_validation}
production:
  - {kind: metric_vs_baseline, dataset: PACKAGE.test, target: churned, threshold: 0.5,
     min_delta: 0}
deploy:
  automatic: true
  endpoint: ENDPOINT
  steps: [50, 100]
  min_seconds: 0
  min_requests: 1
"""

TRIGGERS = """
- name: nightly
  pipeline: PACKAGE.pipeline:release
  params: {n: 4}
  schedule: "0 3 * * *"
- name: on-drift
  pipeline: PACKAGE.pipeline:release
  on_drift: PACKAGE-health
"""


PYPROJECT = """
[tool.ruff]
line-length = 100

[tool.mypy]
files = ["src"]
"""


@dataclass(frozen=True)
class FixtureProject:
    """Where the project is and the names in it."""

    root: Path
    package: str
    model: str
    endpoint: str

    @property
    def src(self) -> Path:
        return self.root / "src" / self.package

    def edit(self, name: str, text: str) -> None:
        """Replace a module of the package (``features.py``, ...)."""
        (self.src / name).write_text(textwrap.dedent(text))


def write_project(
    directory: Path,
    monkeypatch: pytest.MonkeyPatch | None = None,
    *,
    denominator: str = ROW_WISE,
    customers: int = 40,
    on_path: bool = True,
    fixed_now: bool = True,
) -> FixtureProject:
    """Write the project into ``directory`` (created) and, with ``monkeypatch`` and
    ``on_path``, put its ``src/`` first on ``sys.path`` for the test.

    ``denominator``: the on-demand transform's (:data:`ROW_WISE` or :data:`BATCH_MEAN`);
    ``fixed_now``: the sample's times around a fixed day, or around the real now (so
    values are current when the stores are read now, as ``--store`` does).
    """
    package = f"proj_{uuid.uuid4().hex[:10]}"
    model, endpoint = f"{package}-model", f"{package}-ep"
    root = directory
    src = root / "src" / package
    src.mkdir(parents=True)
    (src / "__init__.py").write_text("")
    (src / "features.py").write_text(
        FEATURES.format(package=package, denominator=denominator).lstrip()
    )
    now = "datetime(2026, 6, 1, tzinfo=UTC)" if fixed_now else "datetime.now(UTC)"
    (src / "data.py").write_text(
        DATA.format(package=package, customers=customers, now=now).lstrip()
    )
    (src / "pipeline.py").write_text(PIPELINE.replace("PACKAGE", package).lstrip())
    (src / "train.py").write_text(TRAIN.lstrip())
    (root / "policy.yaml").write_text(
        POLICY.replace("ENDPOINT", endpoint).replace("PACKAGE", package).lstrip()
    )
    (root / "triggers.yaml").write_text(TRIGGERS.replace("PACKAGE", package).lstrip())
    for suite in ("unit", "integration"):
        (root / "tests" / suite).mkdir(parents=True)
        (root / "tests" / suite / f"test_{suite}.py").write_text(f"def test_{suite}():\n    pass\n")
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / "milepost.toml").write_text(
        textwrap.dedent(
            f"""\
            feature_repo = "{package}.features"

            [project]
            name = "{package.replace("_", "-")}"
            package = "{package}"
            model = "{model}"
            target = "churned"
            labels = "{package}.labels"
            pipeline = "{package}.pipeline:release"
            train = "{package}.train:fit"
            sample_data = "{package}.data:sample"
            policy = "policy.yaml"
            triggers = "triggers.yaml"
            endpoint = "{endpoint}"
            """
        )
    )
    if monkeypatch is not None and on_path:
        monkeypatch.syspath_prepend(str(root / "src"))
    return FixtureProject(root, package, model, endpoint)


def rewrite(path: Path, old: str, new: str) -> None:
    """Replace ``old`` with ``new`` in a module of the project, as a user's edit does, and
    drop its compiled copy: Python trusts a ``.pyc`` whose source has the same size and
    modification second, so an edit of equal length made within the second of the last
    import would otherwise go unseen (CI keeps bytecode)."""
    import importlib.util

    text = path.read_text()
    assert old in text, f"{old!r} is not in {path}"
    path.write_text(text.replace(old, new))
    Path(importlib.util.cache_from_source(str(path))).unlink(missing_ok=True)
