"""The model server's reader: a model's pinned features, without the repository's code.

Transforms ran when rows were written, so reading needs only keys, TTL and schema,
which the registry holds.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from milepost.errors import InvalidInput
from milepost.features import versions
from milepost.features.offline import ViewRequest
from milepost.features.online_reads import read_stored
from milepost.features.refs import parse_ref
from milepost.features.resolve import Plan

if TYPE_CHECKING:
    from collections.abc import Sequence

    from milepost.features.service import FeatureService

__all__ = ["ServingReader", "serving_reader"]


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
    holdings = service.holdings(fresh=True)  # reads the records afresh too
    records = {(r.name, r.version): r for r in service.records()}
    for ref in refs:
        name, version, feat = parse_ref(ref)
        rec = records.get((name, version)) if version is not None else None
        if rec is None or version is None:
            raise InvalidInput(f"Pinned feature {ref!r} is not a registered view:vN:feature.")
        if rec.definition.get("kind") != "feature_view":
            raise InvalidInput(
                f"{ref} is on-demand: serving it needs the feature repository's "
                "code, which the model server does not load.",
                hint="Compute it in the client, or pin stored features only.",
            )
        if not rec.active:
            raise InvalidInput(f"{name}:v{version} is retired; the model cannot be served.")
        if rec.materialized_until is None:
            raise InvalidInput(
                f"The model pins {name}:v{version}, which was never materialized to the online "
                "store.",
                hint="Run `milepost features materialize` before deploying.",
            )
        if not holdings.holds(rec):
            raise InvalidInput(
                f"The model pins {name}:v{version}, which is not materialized into the "
                f"current online store ({holdings.store_uri}): it was materialized "
                "into another store, or this one lost its data.",
                hint="Run `milepost features materialize --incremental` before deploying.",
            )
        view = versions.from_definition(rec)  # reads need no transform: rows are stored
        req = requests.setdefault(rec.key, ViewRequest(view, version, []))
        if feat not in req.features:
            req.features.append(feat)
    return ServingReader(service, list(requests.values()))
