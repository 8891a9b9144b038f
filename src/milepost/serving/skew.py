"""Training-serving skew of an endpoint, two ways, from its prediction log.

The model server logs, per predicted row, the feature vector it actually used (the
request's fields plus the pinned online features, ``features`` JSON in
:data:`~milepost.serving.logger.LOG_SCHEMA`). Two checks read it:

- :func:`entity_skew` (per entity): for the served rows of a window (or a seeded sample
  of them), recompute each pinned feature through the *offline* path, a point-in-time
  retrieval at the request's logged time for the logged entity key and the model
  version's pinned ``view:vN:feature`` refs, and compare it with the served value. This
  catches a transform or a materialisation that differs between the two paths.
- :func:`distribution_skew` (distribution): the model version's training reference (the
  profile stored with the version, else the training sample its run logged) against the
  feature vectors served in the window, with :func:`milepost.monitoring.drift`,
  restricted to the model's input features.

Both take the :class:`~milepost.serving.service.DeploymentService` (``rt.serving``),
which holds the serving store (the log), the model registry and the feature store.
Monitoring cannot import serving or features, so these live here and monitors call them.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import orjson
import pandas as pd

from milepost import _validate as check
from milepost._records import jsonable, record_dict
from milepost.errors import InvalidInput, NotFound
from milepost.features.consistency import ABS_TOL, REL_TOL, plain, values_agree
from milepost.features.refs import MAX_SAMPLE, parse_ref
from milepost.features.repo import Definitions
from milepost.monitoring.checks import features_frame
from milepost.monitoring.predictions import read_predictions

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from milepost.models.models import ModelVersion
    from milepost.monitoring import DriftResult, Profile
    from milepost.serving.service import DeploymentService

__all__ = [
    "BY_FEATURE_COLUMNS",
    "DistributionSkew",
    "EntitySkew",
    "distribution_skew",
    "entity_skew",
]

#: The columns of :attr:`EntitySkew.by_feature`, in order.
BY_FEATURE_COLUMNS = [
    "feature",
    "ref",
    "model",
    "version",
    "rows",
    "compared",
    "mismatches",
    "mismatch_share",
    "no_offline",
    "no_served",
    "status",
]
_LOG_COLUMNS = ["request_id", "row", "ts", "variant", "model", "version", "features", "status"]
_AT = "__mp_skew_at"  # the request time column of the point-in-time retrieval


def _null(value: Any) -> Any:
    """A plain value, with NaN, ``pd.NA`` and ``pd.NaT`` as None."""
    value = plain(value)
    return None if value is pd.NA or value is pd.NaT else value


def _verdict(mismatches: int, compared: int) -> str:
    return "no_data" if compared == 0 else "skew" if mismatches else "ok"


@dataclass(frozen=True, eq=False)
class EntitySkew:
    """Served feature values against the offline path's, per entity, in a window.

    ``by_feature`` has one row per pinned feature of each model version served in the
    window (:data:`BY_FEATURE_COLUMNS`): ``rows`` checked, ``compared`` (both values
    present), ``mismatches`` among those, ``mismatch_share`` (mismatches / compared, NaN
    when nothing was compared), ``no_offline`` (the offline path has no value at the
    request's time: older than the view's TTL, or no source row yet; never a mismatch),
    ``no_served`` (served null while offline has a value: the online store lacked it),
    and ``status`` ``ok`` | ``skew`` | ``no_data``.

    Numbers agree within ``rel_tol`` / ``abs_tol`` (relative 1e-6, absolute 1e-9);
    text, integers and booleans must be equal.
    """

    endpoint: str
    since_ms: int
    until_ms: int | None
    logged: int  # ok rows in the window (of the variant, when one was given)
    checked: int  # rows compared: all of them, or the seeded sample
    by_feature: pd.DataFrame
    examples: list[dict[str, Any]] = field(default_factory=list)
    unpinned: list[str] = field(default_factory=list)  # model URIs pinning no features
    no_entity: int = 0  # rows whose logged vector lacks a join key (not checked)
    rel_tol: float = REL_TOL
    abs_tol: float = ABS_TOL

    @property
    def mismatches(self) -> int:
        """Mismatched values over all features."""
        return int(self.by_feature["mismatches"].sum()) if len(self.by_feature) else 0

    @property
    def compared(self) -> int:
        """Values compared (both sides present) over all features."""
        return int(self.by_feature["compared"].sum()) if len(self.by_feature) else 0

    @property
    def mismatch_share(self) -> float | None:
        """Mismatches per compared value over all features (None: nothing compared)."""
        return self.mismatches / self.compared if self.compared else None

    @property
    def status(self) -> str:
        """``skew`` (a mismatch), ``ok`` (values compared, all agree) or ``no_data``."""
        return _verdict(self.mismatches, self.compared)

    @property
    def ok(self) -> bool:
        """True unless a served value differs from the offline one."""
        return self.mismatches == 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``by_feature`` as a list of rows, NaN as null)."""
        rows = [
            {
                k: (None if isinstance(v, float) and math.isnan(v) else plain(v))
                for k, v in r.items()
            }
            for r in self.by_feature.to_dict("records")
        ]
        return record_dict(
            self,
            exclude=("by_feature",),
            extra={
                "by_feature": rows,
                "compared": self.compared,
                "mismatches": self.mismatches,
                "mismatch_share": self.mismatch_share,
                "status": self.status,
            },
        )

    def __repr__(self) -> str:
        return (
            f"EntitySkew({self.endpoint}: {self.checked} rows checked, "
            f"{self.mismatches} mismatches, {self.status})"
        )


@dataclass(frozen=True, eq=False)
class DistributionSkew:
    """The served feature vectors of one model version against its training reference.

    ``drift`` is :func:`milepost.monitoring.drift`'s result over the model's input
    features (``None`` with ``status`` ``no_data`` when the window served nothing);
    ``reference`` says what it was compared with: ``profile`` (stored with the version
    from its training data) or ``training_sample`` (the feature sample its run logged).
    """

    endpoint: str
    model: str
    version: int
    since_ms: int
    until_ms: int | None
    rows: int  # served ok rows of the version in the window
    reference: str
    features: list[str]
    drift: DriftResult | None

    @property
    def status(self) -> str:
        """``no_data``, ``skew`` (the drift verdict says drift) or ``ok``."""
        if self.drift is None:
            return "no_data"
        return "skew" if bool(self.drift.dataset_drift) else "ok"

    @property
    def by_feature(self) -> pd.DataFrame:
        """One row per feature and method (the drift result's ``features``)."""
        if self.drift is None:
            return pd.DataFrame(columns=["feature", "method", "statistic", "drifted"])
        frame: pd.DataFrame = self.drift.features
        return frame

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the drift result through its own ``to_dict()``)."""
        return record_dict(self, extra={"status": self.status})

    def __repr__(self) -> str:
        return (
            f"DistributionSkew({self.endpoint}: models:/{self.model}/{self.version}, "
            f"{self.rows} rows vs {self.reference}, {self.status})"
        )


def _window(since_ms: Any, until_ms: Any) -> None:
    check.integer(since_ms, "since_ms")
    if until_ms is not None:
        check.integer(until_ms, "until_ms", minimum=int(since_ms))


def _served(
    service: DeploymentService,
    endpoint: str,
    since_ms: int,
    until_ms: int | None,
    variant: str | None,
) -> pd.DataFrame:
    """The ``ok`` log rows of the window (of ``variant``), in time order."""
    table = read_predictions(
        service.store,
        endpoint,
        since_ms=since_ms,
        until_ms=until_ms,
        variant=variant,
        columns=_LOG_COLUMNS,
    )
    if table is None:
        return pd.DataFrame(columns=_LOG_COLUMNS)
    frame: pd.DataFrame = table.to_pandas()
    return frame[frame["status"] == "ok"].reset_index(drop=True)


def entity_skew(
    service: DeploymentService,
    endpoint: str,
    *,
    since_ms: int,
    until_ms: int | None = None,
    variant: str | None = None,
    sample: int | None = 1000,
    seed: int = 0,
    definitions: Definitions | None = None,
    max_examples: int = 5,
) -> EntitySkew:
    """Compare served feature values with the offline path's, per logged entity.

    For each ``ok`` row logged in ``[since_ms, until_ms]`` (epoch ms, both inclusive; of
    ``variant`` only, if given), or a sample of ``sample`` of them drawn with ``seed``
    (``None``: every row), the pinned features of the model version that served it are
    retrieved point-in-time at the row's logged time ``ts`` for the entity in its logged
    feature vector, and compared with the served values. Model versions that pin no
    features are listed in ``unpinned``.

    Known differences that are not skew: a source row created after the request (late
    data, a correction) is visible offline but was not served; values materialised
    late were served older. Read a mismatch's example (both values) before blaming the
    transform.

    Args:
        definitions: the feature repository's definitions, when its code is loaded (a
            version's transform then runs offline as it did when materialising); without
            them versions are rebuilt from the registry.
        max_examples: examples kept per feature (entity, time, both values).

    Raises:
        NotFound: no such endpoint.
        InvalidInput: a bad window, sample or seed.
    """
    service.require(endpoint)
    _window(since_ms, until_ms)
    if variant is not None:
        check.name(variant, "variant")
    if sample is not None:
        check.integer(sample, "sample", minimum=1, maximum=MAX_SAMPLE)
    check.integer(seed, "seed", minimum=0)
    check.integer(max_examples, "max_examples", minimum=0)
    defs = definitions if definitions is not None else Definitions()
    served = _served(service, endpoint, since_ms, until_ms, variant)
    logged = len(served)
    if sample is not None and logged > sample:
        served = served.sample(n=sample, random_state=seed).sort_index()
    rows: list[dict[str, Any]] = []
    examples: list[dict[str, Any]] = []
    unpinned: list[str] = []
    no_entity = 0
    for key, group in served.groupby(["model", "version"], sort=True):
        model, version = (str(part) for part in key)
        mv = service.models.get_version(model, int(version))
        if not mv.feature_refs:
            unpinned.append(mv.uri)
            continue
        stats, found, missing_keys = _compare(service, defs, mv, group, max_examples)
        rows += stats
        examples += found
        no_entity += missing_keys
    by_feature = pd.DataFrame(rows, columns=BY_FEATURE_COLUMNS)
    return EntitySkew(
        endpoint,
        since_ms,
        until_ms,
        logged,
        len(served),
        by_feature,
        examples,
        unpinned,
        no_entity,
    )


def _compare(
    service: DeploymentService,
    defs: Definitions,
    mv: ModelVersion,
    group: pd.DataFrame,
    max_examples: int,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """Per-feature counts and examples for the rows one model version served."""
    refs = list(mv.feature_refs)
    plan = service.features.resolve(defs, refs, full_names=True)
    join_keys = sorted({k for req in plan.stored for k in req.view.entity.join_keys})
    vectors = [orjson.loads(text) for text in group["features"]]
    keep = [i for i, v in enumerate(vectors) if all(v.get(k) is not None for k in join_keys)]
    vectors = [vectors[i] for i in keep]
    times = group["ts"].iloc[keep].reset_index(drop=True)
    request_ids = group["request_id"].iloc[keep].tolist()
    no_entity = len(group) - len(keep)
    entity_df = pd.DataFrame({k: [v[k] for v in vectors] for k in join_keys}).infer_objects()
    entity_df[_AT] = pd.to_datetime(times, utc=True)
    offline = (
        service.features.get_historical_features(
            defs, entity_df, refs, timestamp_column=_AT, full_feature_names=True
        )
        if vectors
        else pd.DataFrame()
    )
    stats: list[dict[str, Any]] = []
    examples: list[dict[str, Any]] = []
    for ref, column in zip(refs, plan.output, strict=True):
        name = parse_ref(ref)[2]  # the serving reader logs each feature by its own name
        counts = {"compared": 0, "mismatches": 0, "no_offline": 0, "no_served": 0}
        found: list[dict[str, Any]] = []
        values = offline[column].tolist() if vectors else []
        for i, (vector, raw) in enumerate(zip(vectors, values, strict=True)):
            off = _null(raw)
            got = vector.get(name)
            if off is None:
                counts["no_offline"] += 1
            elif got is None:
                counts["no_served"] += 1
            else:
                counts["compared"] += 1
                if not values_agree(got, off):
                    counts["mismatches"] += 1
                    if len(found) < max_examples:
                        found.append(
                            {
                                "feature": name,
                                "ref": ref,
                                "entity": {k: vector[k] for k in join_keys},
                                "request_id": request_ids[i],
                                "ts": times.iloc[i].isoformat(),
                                "served": got,
                                "offline": jsonable(off),
                            }
                        )
        compared, bad = counts["compared"], counts["mismatches"]
        stats.append(
            {
                "feature": name,
                "ref": ref,
                "model": mv.name,
                "version": mv.version,
                "rows": len(vectors),
                **counts,
                "mismatch_share": bad / compared if compared else math.nan,
                "status": _verdict(bad, compared),
            }
        )
        examples += found
    return stats, examples, no_entity


def _reference(service: DeploymentService, mv: ModelVersion) -> tuple[Profile | pd.DataFrame, str]:
    """The version's training reference: its stored profile, else its run's feature
    sample (see :mod:`milepost.features.historical`)."""
    profile = service.models.get_profile(mv.name, mv.version)
    if profile is not None:
        return profile, "profile"
    if mv.run_id is not None:
        try:
            data = service.models.tracking.read_artifact(
                mv.run_id, "features/training_sample.parquet"
            )
        except NotFound:
            data = None
        if data is not None:
            return pd.read_parquet(io.BytesIO(data)), "training_sample"
    raise NotFound(
        f"{mv.uri} has no training reference to compare served features with.",
        hint="Log the model with training_data=... (stores its profile), or train it on "
        "get_historical_features(...) inside a run (stores a feature sample).",
    )


def _columns_of(reference: Profile | pd.DataFrame) -> list[str]:
    if isinstance(reference, pd.DataFrame):
        return [str(c) for c in reference.columns]
    return list(reference.columns)


def distribution_skew(
    service: DeploymentService,
    endpoint: str,
    *,
    since_ms: int,
    model: str | None = None,
    version: int | None = None,
    until_ms: int | None = None,
    variant: str | None = None,
    categorical: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
    thresholds: Mapping[str, Any] | None = None,
    importance: Mapping[str, float] | None = None,
) -> DistributionSkew:
    """Drift of the feature vectors ``models:/model/version`` was served in the window
    against its training reference, over its input features.

    Without ``model`` and ``version``, the endpoint's primary variant now (its version,
    and only the rows it served).

    The input features are the signature's inputs that the reference holds (all the
    reference's columns without a signature). ``categorical`` defaults to the inputs the
    signature types as string or boolean; ``methods``, ``thresholds`` and ``importance``
    go to :func:`milepost.monitoring.drift` (whose verdict, ``dataset_drift``, makes
    ``status`` ``skew``: half the inputs drifted, or one at least as important as its
    ``importance_threshold``). Rows are the ``ok`` rows logged in ``[since_ms,
    until_ms]`` by that version (and ``variant``, if given).

    Raises:
        NotFound: no such endpoint or model version, or the version has no training
            reference (no stored profile, no logged feature sample).
        InvalidInput: a bad window, or the reference holds none of the model's inputs.
    """
    service.require(endpoint)
    _window(since_ms, until_ms)
    if model is None and version is None:
        primary = service.get(endpoint)[0].primary
        model, version, variant = primary.model, primary.version, variant or primary.name
    elif model is None or version is None:
        raise InvalidInput(
            "Pass both model and version, or neither (the endpoint's primary variant)."
        )
    mv = service.models.get_version(model, version)
    reference, kind = _reference(service, mv)
    have = _columns_of(reference)
    inputs = mv.signature.input_names if mv.signature is not None else have
    cols = [c for c in inputs if c in have]
    if not cols:
        raise InvalidInput(
            f"The training reference of {mv.uri} holds none of its inputs ({', '.join(inputs)}).",
            hint="Log the model with training_data holding its input columns.",
        )
    if categorical is None and mv.signature is not None:
        categorical = [c.name for c in mv.signature.inputs if c.type in ("string", "boolean")]
    served = _served(service, endpoint, since_ms, until_ms, variant)
    served = served[(served["model"] == mv.name) & (served["version"] == mv.version)]
    result = DistributionSkew(
        endpoint, mv.name, mv.version, since_ms, until_ms, len(served), kind, cols, None
    )
    if served.empty:
        return result
    current = features_frame(served).reindex(columns=cols)
    if isinstance(reference, pd.DataFrame):
        reference = reference[cols]
    else:  # a stored profile: only the model's inputs (not the label, not other columns)
        reference = replace(reference, columns={c: reference.columns[c] for c in cols})
    from milepost.monitoring import drift

    cats = [c for c in categorical or () if c in cols]
    outcome = drift(
        reference,
        current,
        categorical=cats or None,
        methods=methods,
        thresholds=thresholds,
        importance=importance,
    )
    return DistributionSkew(
        endpoint, mv.name, mv.version, since_ms, until_ms, len(served), kind, cols, outcome
    )
