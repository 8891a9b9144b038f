"""The model server's reader: a model's pinned features, without the repository's code.

Transforms ran when rows were written, so reading needs only keys, TTL and schema,
which the registry holds.

An on-demand feature is the exception: it is computed per request, from the request's
data and the stored features of its sources, by its transform, so serving it needs that
code. A model pinning one is served when the code is loaded in the process (the
version's stored code is matched by fingerprint, see :mod:`milepost.features.transforms`);
otherwise the module that defined it (recorded when it was applied) is imported if it
is installed here, and failing that the ``feature_repo`` setting's definitions are
loaded once, and the match is tried again.
Reads then take the same path as ``FeatureStore.get_online_features``.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

from milepost.errors import InvalidInput
from milepost.features import versions
from milepost.features.offline import ViewRequest
from milepost.features.online_reads import get_online_features, read_stored
from milepost.features.refs import parse_ref
from milepost.features.resolve import Plan

if TYPE_CHECKING:
    from collections.abc import Sequence

    from milepost.features.backends.sql import VersionRecord
    from milepost.features.definitions import OnDemandFeatureView
    from milepost.features.repo import Definitions, View
    from milepost.features.service import FeatureService

__all__ = ["OnDemandServingReader", "ServingReader", "serving_reader"]


class ServingReader:
    """Reads a model's pinned features for entity rows (one lookup per view version)."""

    def __init__(self, service: FeatureService, requests: list[ViewRequest]) -> None:
        self.service = service
        self.requests = requests
        self.join_keys = sorted({k for r in requests for k in r.view.entity.join_keys})
        self._plan = Plan.of_stored(requests)

    def read(self, rows: list[dict[str, Any]]) -> tuple[dict[str, list[Any]], dict[str, list[str]]]:
        """``{feature: values}`` and ``{feature: statuses}`` for the rows, now."""
        values: dict[str, list[Any]] = {}
        statuses: dict[str, list[str]] = {}
        now_ms = int(time.time() * 1000)
        read_stored(self.service.online, self._plan.reads, rows, now_ms, values, statuses)
        return values, statuses


def serving_reader(service: FeatureService, refs: Sequence[str]) -> ServingReader:
    """Online reads of pinned ``view:vN:feature`` refs (see
    :meth:`FeatureService.serving_reader`)."""
    requests: dict[str, ViewRequest] = {}
    on_demand: dict[str, VersionRecord] = {}
    holdings = service.holdings(fresh=True)  # reads the records afresh too
    records = {(r.name, r.version): r for r in service.records()}
    for ref in refs:
        name, version, feat = parse_ref(ref)
        rec = records.get((name, version)) if version is not None else None
        if rec is None or version is None:
            raise InvalidInput(f"Pinned feature {ref!r} is not a registered view:vN:feature.")
        if rec.definition.get("kind") != "feature_view":
            on_demand.setdefault(rec.key, rec)
            continue
        _check_servable(rec, holdings)
        view = versions.from_definition(rec)  # reads need no transform: rows are stored
        req = requests.setdefault(rec.key, ViewRequest(view, version, []))
        if feat not in req.features:
            req.features.append(feat)
    if not on_demand:
        return ServingReader(service, list(requests.values()))
    defs, computed = _on_demand_views(service, list(on_demand.values()))
    keys = {k for r in requests.values() for k in r.view.entity.join_keys}
    by_fingerprint = {(r.name, r.fingerprint): r for r in records.values()}
    for odv in computed:
        for src in odv.sources:
            keys.update(src.entity.join_keys)
            found = by_fingerprint.get((src.name, src.fingerprint()))
            if found is not None:  # rebuilt from a registered version: it is one
                _check_servable(found, holdings)
    return OnDemandServingReader(service, list(refs), defs, sorted(keys))


def _check_servable(rec: VersionRecord, holdings: versions.Holdings) -> None:
    """Refuse a stored view version the online store cannot answer for."""
    name, version = rec.name, rec.version
    if not rec.active:
        raise InvalidInput(f"{name}:v{version} is retired; the model cannot be served.")
    if rec.materialized_until is None:
        raise InvalidInput(
            f"The model pins {name}:v{version}, which was never materialized to the online store.",
            hint="Run `milepost features materialize` before deploying.",
        )
    if not holdings.holds(rec):
        raise InvalidInput(
            f"The model pins {name}:v{version}, which is not materialized into the "
            f"current online store ({holdings.store_uri}): it was materialized "
            "into another store, or this one lost its data.",
            hint="Run `milepost features materialize --incremental` before deploying.",
        )


def _on_demand_views(
    service: FeatureService, pinned: list[VersionRecord]
) -> tuple[Definitions, list[OnDemandFeatureView]]:
    """The pinned on-demand versions with their code, and the definitions that hold it:
    none when the code is loaded (already, or by importing the installed module that
    defined it when it was applied), else the ``feature_repo`` setting's.

    Raises:
        InvalidInput: the code is not loaded and the feature repository does not load
            or does not define that version.
    """
    from milepost.features.definitions import OnDemandFeatureView
    from milepost.features.repo import Definitions, load_definitions

    records = service.records()
    defs = Definitions(origin="<model server>")

    def loaded() -> list[View]:
        return [versions.rebuild(rec, records, defs) for rec in pinned]

    try:
        views = loaded()
    except InvalidInput:
        _import_defining_modules(pinned)
        try:
            views = loaded()
        except InvalidInput as missing:
            repo = service.settings.feature_repo
            try:
                defs = load_definitions(repo)
                views = [versions.view_of(rec, records, defs) for rec in pinned]
            except InvalidInput as exc:
                raise InvalidInput(
                    f"{pinned[0].key} is on-demand: serving it runs its transform, whose code "
                    f"is not loaded here ({missing.message}): the module that defined it is "
                    f"not importable here, and the feature_repo setting {repo!r} does not "
                    f"provide it ({exc.message}).",
                    hint="Install the package that defines the features where the model is "
                    "served (or set feature_repo to its module, as milepost.toml does), or "
                    "pin stored features only.",
                ) from exc
    return defs, [v for v in views if isinstance(v, OnDemandFeatureView)]


_MODULE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def _import_defining_modules(pinned: list[VersionRecord]) -> None:
    """Import the installed modules that defined the pinned on-demand versions' transforms
    (recorded by ``apply``), so their code is loaded: one server can serve the on-demand
    features of several installed projects without a ``feature_repo`` setting for each.

    Only a module importable here is imported, and only by its dotted name (never a
    path); one that is missing or fails to import is skipped, and the ``feature_repo``
    setting is tried next.
    """
    import importlib
    import importlib.util

    for rec in pinned:
        name = (rec.origin or {}).get("module")
        if not isinstance(name, str) or name == "__main__" or not _MODULE.fullmatch(name):
            continue
        try:
            if importlib.util.find_spec(name) is not None:
                importlib.import_module(name)
        except Exception:  # noqa: S112 (not installed or broken here: the setting is next)
            continue


class OnDemandServingReader(ServingReader):
    """Reads a model's pinned features when some are on-demand: the request rows carry
    the request data; stored features are read online and the transforms run on them,
    as ``FeatureStore.get_online_features`` does."""

    def __init__(
        self,
        service: FeatureService,
        refs: list[str],
        defs: Definitions,
        join_keys: list[str],
    ) -> None:
        self.service = service
        self.refs = refs
        self.defs = defs  # held: plans are cached per definitions object
        self.join_keys = join_keys

    def read(self, rows: list[dict[str, Any]]) -> tuple[dict[str, list[Any]], dict[str, list[str]]]:
        """``{feature: values}`` and ``{feature: statuses}`` for the rows, now.

        Raises:
            InvalidInput: a row lacks the request data an on-demand feature needs.
        """
        answer = get_online_features(self.service, self.defs, self.refs, rows)
        return answer.values, answer.statuses
