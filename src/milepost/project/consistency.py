"""``milepost check consistency``: do training and serving compute the same features?

For every feature view and on-demand view of the project (or those named), the same
entity rows go through both code paths at the same moment:

- **online**, as serving reads: one ``get_online_features`` call per entity row (so a
  transform that reads its batch, such as dividing by a column's ``.mean()``, sees one
  row, as it does behind an endpoint);
- **offline**, as training reads: one ``get_historical_features`` call with every row,
  point-in-time at that moment.

Each feature's two values must agree (:func:`milepost.features.consistency.values_agree`:
numbers within a relative 1e-6, absolute 1e-9; others equal; null only with null).

The rows come from the project's labels dataset (its newest version): its distinct
entity keys, and for an on-demand view its request columns too (the first sample
dataset that has them when the labels do not); a feature view whose entity the labels
do not hold is sampled from the online store. Up to ``sample`` rows per view, picked at
random with a fixed seed.

By default the check builds a sandbox (:func:`milepost.project.sandbox`: a temporary
home with the sample data, removed afterwards) and compares just after the sample's
newest time. ``store=True`` checks the configured stores as they are, now (embedded
mode only).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from milepost.errors import ConfigError, InvalidInput, NotFound, did_you_mean
from milepost.project._imports import on_path
from milepost.project.config import Project, load_project

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pandas as pd

    from milepost._context import Runtime
    from milepost.features.consistency import ConsistencyReport
    from milepost.features.repo import Definitions

__all__ = ["check_consistency"]


def check_consistency(
    project: Project | None = None,
    *,
    views: Sequence[str] | None = None,
    sample: int = 100,
    store: bool = False,
) -> list[ConsistencyReport]:
    """Compare the offline and online values of every view on the same rows and moment.

    Args:
        project: the project (default: the one of the nearest ``milepost.toml``).
        views: names (``VIEW`` or ``VIEW:vN``) to check; default every feature view and
            on-demand view of the definitions.
        sample: the most entity rows per view.
        store: check the configured stores as they are instead of a sandbox.

    Returns:
        One report per view; ``report.ok`` is False when any value differs.

    Raises:
        ConfigError: ``store=True`` in remote mode.
        NotFound: a named view the definitions do not define.
        InvalidInput: no sample data (sandbox), or no dataset holds an on-demand view's
            request columns.
    """
    from milepost._context import Runtime

    project = project or load_project()
    if not store:
        from milepost.project.sandbox import load_sample, sample_end, sandbox

        with sandbox(project) as inside:
            frames = load_sample(inside)
            moment = sample_end(frames) or datetime.now(UTC)
            from milepost._context import get_runtime

            return _check(inside, get_runtime(), views, sample, moment, list(frames), False)
    if project.settings.settings.url:
        raise ConfigError(
            "check consistency --store compares the stores this process opens, and "
            f"MILEPOST_URL ({project.settings.settings.url}) makes it a client of a server.",
            hint="Run it where the stores are (without MILEPOST_URL), or leave out --store "
            "to check a sandbox built from the sample data.",
        )
    with on_path(project), Runtime(project.settings) as rt:
        names = [project.config.labels]
        return _check(project, rt, views, sample, datetime.now(UTC), names, True)


def _check(
    project: Project,
    rt: Runtime,
    views: Sequence[str] | None,
    sample: int,
    moment: datetime,
    datasets: list[str],
    store: bool,
) -> list[ConsistencyReport]:
    from milepost.features.definitions import FeatureView

    defs = rt.feature_store(project.feature_repo).definitions
    refs = _views(defs, views)
    tables = _Tables(rt, [project.config.labels, *datasets], store=store)
    reports = []
    for ref in refs:
        view = defs.views[ref.partition(":")[0]]
        if isinstance(view, FeatureView):
            keys = list(view.entity.join_keys)
            found = tables.with_columns(keys)
            rows = None if found is None else _rows(found[1], keys, keys, sample)
        else:
            keys = [k for src in view.sources[:1] for k in src.entity.join_keys]
            request = [f.name for f in view.request_schema]
            found = tables.with_columns([*keys, *request])
            if found is None:
                raise InvalidInput(
                    f"On-demand view {view.name!r} needs request data "
                    f"({', '.join(request)}) with {', '.join(keys) or 'no keys'}, and no "
                    f"dataset has those columns ({tables.describe([*keys, *request])}).",
                    hint=f"Add {', '.join(request)} to the labels dataset "
                    f"({project.config.labels}) in the sample data"
                    + (", and register it in the stores." if tables.store else "."),
                )
            rows = _rows(found[1], keys, [*keys, *request], sample)
        reports.append(
            rt.features.check_consistency(defs, ref, sample=sample, now=moment, rows=rows)
        )
    return reports


def _views(defs: Definitions, names: Sequence[str] | None) -> list[str]:
    from milepost.features.definitions import FeatureView

    if not names:
        stored = [n for n, v in defs.views.items() if isinstance(v, FeatureView)]
        return stored + [n for n in defs.views if n not in stored]
    for ref in names:
        name = ref.partition(":")[0]
        if name not in defs.views:
            raise NotFound(
                f"{defs.origin} defines no view {name!r}.{did_you_mean(name, defs.views)}",
                hint=f"Its views: {', '.join(defs.views)}.",
            )
    return list(names)


class _Tables:
    """The newest versions of the candidate datasets, read once each."""

    def __init__(self, rt: Runtime, names: list[str], *, store: bool) -> None:
        self.rt, self.store = rt, store
        self.names = list(dict.fromkeys(names))
        self.looked: list[str] = []
        self._frames: dict[str, pd.DataFrame | None] = {}

    def frame(self, name: str) -> pd.DataFrame | None:
        if name not in self._frames:
            try:
                self._frames[name] = self.rt.data.get(name).to_pandas()
            except NotFound:
                self._frames[name] = None
        return self._frames[name]

    def with_columns(self, columns: list[str]) -> tuple[str, pd.DataFrame] | None:
        """The first dataset holding every column."""
        for name in self.names:
            if name not in self.looked:
                self.looked.append(name)
            frame = self.frame(name)
            if frame is not None and all(c in frame.columns for c in columns):
                return name, frame
        return None

    def describe(self, columns: list[str]) -> str:
        """What each dataset looked at lacks: ``labels lacks basket_value; x: none``."""
        parts = []
        for name in self.looked:
            frame = self.frame(name)
            if frame is None:
                parts.append(f"{name}: not registered")
            else:
                lacking = [c for c in columns if c not in frame.columns]
                parts.append(f"{name} lacks {', '.join(lacking)}")
        return "; ".join(parts)


def _rows(
    frame: pd.DataFrame, keys: list[str], columns: list[str], sample: int
) -> list[dict[str, Any]]:
    """Up to ``sample`` rows of ``columns``, one per entity (the first row of each)."""
    distinct = frame[columns].drop_duplicates(subset=keys or None)
    if len(distinct) > sample:
        distinct = distinct.sample(n=sample, random_state=0)
    return [{str(k): v for k, v in r.items()} for r in distinct.to_dict("records")]
