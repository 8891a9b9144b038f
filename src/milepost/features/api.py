"""``milepost.features.FeatureStore``: definitions from your repository, bound to the stores.

A store works on the feature service of the process's store context, the same instance
as ``milepost.get_runtime().features`` (see :mod:`milepost.stores.context`).
"""

from __future__ import annotations

import inspect
from pathlib import PurePath
from types import ModuleType
from typing import TYPE_CHECKING, Any

from milepost.data.api import data_service
from milepost.errors import InvalidInput
from milepost.features.repo import Definitions, PlanItem, load_definitions
from milepost.features.service import FeatureService
from milepost.stores.context import StoreContext, default_context
from milepost.tracking._active import active_run_id, tracking_service

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import datetime
    from pathlib import Path

    import pandas as pd

    from milepost.features.definitions import Entity, FeatureView, OnDemandFeatureView
    from milepost.features.materialize import Materialization, OnlineCoverage
    from milepost.features.service import ConsistencyReport, OnlineResponse

__all__ = ["FeatureStore", "feature_service"]


def feature_service(ctx: StoreContext | None = None) -> FeatureService:
    """The feature service of a store context (default: the process's), one per context."""
    return (ctx or default_context()).component(
        FeatureService,
        lambda c: FeatureService(
            c.db, c.settings, data=data_service(c), tracking=tracking_service(c)
        ),
    )


class FeatureStore:
    """The feature store API, with the definitions of one repository.

    Args:
        repo: a ``.py`` file or module with definitions (default: the ``feature_repo``
            setting, ``features.py``), or a list of Entity / FeatureView objects (and
            functions that computed older versions).
        history: older definition files or modules (e.g. ``git show REV:features.py``
            saved as ``features_v1.py``): their functions compute the older versions they
            defined, whatever the functions are called there. Only their code is used;
            the views this store reads and applies are those of ``repo``.
        context: the store context to work on; default the process's (the one
            ``milepost.get_runtime()`` uses). ``Runtime.feature_store()`` passes its own.
    """

    def __init__(
        self,
        repo: str
        | Path
        | ModuleType
        | Sequence[Entity | FeatureView | OnDemandFeatureView]
        | None = None,
        *,
        history: Sequence[str | Path | ModuleType] = (),
        context: StoreContext | None = None,
    ) -> None:
        if context is not None and not isinstance(context, StoreContext):
            raise InvalidInput(
                f"FeatureStore(context=...) takes a StoreContext, got {type(context).__name__}.",
                hint="Use runtime.feature_store(...) for a Runtime of your own.",
            )
        ctx = context or default_context()
        self._service = feature_service(ctx)
        if repo is None:
            repo = ctx.settings.feature_repo
        if not isinstance(history, (list, tuple)) or not all(
            isinstance(h, (str, PurePath, ModuleType)) for h in history
        ):
            raise InvalidInput(
                "history must be a list of definition files or modules, got "
                f"{type(history).__name__}.",
                hint='For example history=["features_v1.py"].',
            )
        for older in history:  # loading registers their code (see features.transforms)
            load_definitions(older)
        if isinstance(repo, (list, tuple)):
            from milepost.features.definitions import Entity, FeatureView, OnDemandFeatureView

            for obj in repo:
                if not isinstance(
                    obj, (Entity, FeatureView, OnDemandFeatureView)
                ) and not inspect.isfunction(obj):
                    raise InvalidInput(
                        f"FeatureStore takes Entity, FeatureView and OnDemandFeatureView "
                        f"objects (and functions that computed older versions), got a "
                        f"{type(obj).__name__}.",
                        hint="Or pass the .py file or module that defines them.",
                    )
            self.definitions = Definitions.of(list(repo))
        else:
            self.definitions = load_definitions(repo)  # type: ignore[arg-type]

    def plan(self) -> list[PlanItem]:
        """What ``apply`` would change."""
        return self._service.plan(self.definitions)

    def apply(self) -> list[PlanItem]:
        """Register the definitions; a changed definition becomes a new version.

        Each item's ``next_steps`` says what to run next: materialize a version the online
        store does not hold yet, and which models keep reading the version before.
        """
        return self._service.apply(self.definitions)

    def get_historical_features(
        self,
        entity_df: pd.DataFrame,
        features: Sequence[str],
        *,
        timestamp_column: str = "event_timestamp",
        full_feature_names: bool = False,
    ) -> pd.DataFrame:
        """Point-in-time-correct features for every entity row (order kept, none dropped).

        Inside a run, the retrieval is recorded with it (models logged from the run pin
        these feature versions) and a sample of the rows is stored for skew checks.
        """
        return self._service.get_historical_features(
            self.definitions,
            entity_df,
            features,
            timestamp_column=timestamp_column,
            full_feature_names=full_feature_names,
            run_id=active_run_id(),
        )

    def materialize(
        self,
        start: datetime | None,
        end: datetime,
        *,
        views: Sequence[str] | None = None,
        progress: Callable[[str, int], None] | None = None,
    ) -> Materialization:
        """Load the newest rows in ``[start, end)`` into the online store.

        Returns rows written per view version (``{"view:vN": rows}``); its ``details``
        say what each wrote and why. Only ``[start, end)`` counts as materialized into
        this online store, so a later :meth:`materialize_incremental` also fills what
        lies before ``start``.
        """
        return self._service.materialize(
            self.definitions, start=start, end=end, views=views, progress=progress
        )

    def materialize_incremental(
        self,
        end: datetime | None = None,
        *,
        views: Sequence[str] | None = None,
        progress: Callable[[str, int], None] | None = None,
    ) -> Materialization:
        """Write what the online store lacks of each view's TTL window up to ``end`` (now).

        The watermark belongs to the online store: a store that is new, was switched,
        lost its data or was restored from an older snapshot is refilled; one that holds
        the window up to its watermark gets the rest. ``details`` says what and why.
        """
        return self._service.materialize_incremental(
            self.definitions, end=end, views=views, progress=progress
        )

    def online_status(self) -> list[OnlineCoverage]:
        """Per registered view version: what the current online store holds of it
        (``describe()``: ``through T``, what is missing, or never materialized into it)."""
        return self._service.online_status()

    def push(self, view: str, rows: pd.DataFrame | list[dict[str, Any]]) -> int:
        """Write rows to the online store now and to the offline store (buffered)."""
        return self._service.push(self.definitions, view, rows)  # type: ignore[arg-type]

    def flush(self) -> None:
        """Write buffered pushed rows to the offline store."""
        self._service.flush()

    def get_online_features(
        self,
        features: Sequence[str],
        entity_rows: Sequence[dict[str, Any]] | pd.DataFrame,
        *,
        full_feature_names: bool = False,
    ) -> OnlineResponse:
        """Latest values per entity, with a status per value (present, expired, missing).

        Raises:
            Conflict: a view version asked for (``view:feature`` reads the version of these
                definitions) is not materialized into the online store; the message names
                it and the command that loads it.
        """
        return self._service.get_online_features(
            self.definitions, features, entity_rows, full_feature_names=full_feature_names
        )

    def refresh(self) -> None:
        """Read the registered versions and what the online store holds again now.

        Online reads cache both for a second and the read that finds them older reads them
        again; a long-lived server calls this more often, off its request path (``milepost
        features serve`` does every half second), so that no request pays for it.
        """
        self._service.refresh()

    def check_consistency(
        self, view: str, *, sample: int = 100, rows: Sequence[dict[str, Any]] | None = None
    ) -> ConsistencyReport:
        """Online values (one read per entity, as serving reads) against offline
        point-in-time values, now, for ``rows`` (join keys, and an on-demand view's request
        data) or entities sampled from the online store (a feature view only)."""
        return self._service.check_consistency(self.definitions, view, sample=sample, rows=rows)

    def online_entities(self, view: str, n: int = 100) -> list[dict[str, Any]]:
        """Up to ``n`` entity keys (random) with rows in the online store, e.g. for smoke
        or load tests of a model server."""
        return self._service.online_entities(self.definitions, view, n)

    def retire(self, view: str, version: int) -> None:
        """Retire a version (refused while a Staging or Production model pins it)."""
        self._service.retire(view, version)
