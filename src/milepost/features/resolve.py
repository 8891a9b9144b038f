"""Which registered view versions a request reads: records, refs and cached plans.

A :class:`Plan` is what a list of refs resolves to against one set of definitions and the
registered versions: per stored view version the features to read (and, computed once,
how to read them online), the on-demand views to run, and the output columns. Plans are
cached per definitions object (held weakly: a plan goes with its definitions) and
dropped whenever the registered versions are read again.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from milepost.errors import InvalidInput, NotFound, did_you_mean
from milepost.features import versions
from milepost.features.definitions import FeatureView, OnDemandFeatureView
from milepost.features.offline import ViewRequest
from milepost.features.refs import parse_ref

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from milepost.features.backends.sql import SqlFeatureRegistry, VersionRecord
    from milepost.features.repo import Definitions

__all__ = ["OnDemandRequest", "Plan", "Resolver", "ViewRead"]

View = FeatureView | OnDemandFeatureView
#: An on-demand view version and the features asked of it.
OnDemandRequest = tuple[OnDemandFeatureView, int, list[str]]


@dataclass(frozen=True)
class ViewRead:
    """How to read one stored view version online (worked out once per plan)."""

    key: str  # view:vN
    entity: str
    join_keys: tuple[str, ...]
    ttl_ms: float
    index: tuple[int, ...]  # where each wanted feature sits in the stored row
    columns: tuple[str, ...]  # the internal column (view__feature) of each
    width: int  # features in a stored row

    @classmethod
    def of(cls, req: ViewRequest, names: dict[tuple[str, str], str]) -> ViewRead:
        """The read of a request's features, named as ``names`` says."""
        view, key = req.view, req.key
        stored = view.features
        return cls(
            key,
            view.entity.name,
            tuple(view.entity.join_keys),
            view.ttl.total_seconds() * 1000,
            tuple(stored.index(f) for f in req.features),
            tuple(names[(key, f)] for f in req.features),
            len(stored),
        )


@dataclass
class Plan:
    """Refs resolved against definitions and the registered versions."""

    stored: list[ViewRequest]
    on_demand: list[OnDemandRequest]
    names: dict[tuple[str, str], str]  # (view:vN, feature) -> internal column view__feature
    output: list[str]  # the requested features' column names, in request order
    internal: list[str]  # the internal column of each output
    fingerprints: dict[str, str]
    records: dict[str, VersionRecord] = field(default_factory=dict)  # stored view:vN
    # view versions the online store does not hold (computed on the first online read)
    unheld: list[VersionRecord] | None = None
    reads: tuple[ViewRead, ...] = field(init=False)
    pairs: tuple[tuple[str, str], ...] = field(init=False)  # (output, internal)

    #: the reads fill the response's columns directly (no on-demand views; the stored
    #: reads give the output columns in order), so no renaming is left to do
    direct: bool = field(init=False)

    def __post_init__(self) -> None:
        self.pairs = tuple(zip(self.output, self.internal, strict=True))
        reads = tuple(ViewRead.of(req, self.names) for req in self.stored)
        self.direct = not self.on_demand and [c for r in reads for c in r.columns] == list(
            dict.fromkeys(self.internal)
        )
        if self.direct:  # read straight into the output names
            rename = {internal: output for output, internal in self.pairs}
            reads = tuple(replace(r, columns=tuple(rename[c] for c in r.columns)) for r in reads)
        self.reads = reads

    @classmethod
    def of_stored(cls, requests: list[ViewRequest]) -> Plan:
        """A plan of stored requests only, each feature under its own name."""
        names = {(r.key, f): f for r in requests for f in r.features}
        return cls(requests, [], names, list(names.values()), list(names.values()), {})


class Resolver:
    """Turns refs into plans against the registered versions, caching the plans.

    Args:
        registry: where unknown names are reported from.
        records: the registered versions (the service's cached list).
    """

    def __init__(
        self, registry: SqlFeatureRegistry, records: Callable[[], list[VersionRecord]]
    ) -> None:
        self._registry = registry
        self._records = records
        # per definitions object (weakly: a plan never outlives, or outlasts a swap of,
        # the definitions it was resolved against), then per (refs, full names)
        self._plans: weakref.WeakKeyDictionary[
            Definitions, dict[tuple[tuple[str, ...], bool], Plan]
        ] = weakref.WeakKeyDictionary()

    def clear(self) -> None:
        """Forget every plan (the registered versions were read again)."""
        self._plans.clear()

    def recheck(self) -> None:
        """Keep the plans, but ask the online store again what it holds of them."""
        for by_refs in self._plans.values():
            for plan in by_refs.values():
                plan.unheld = None

    def cached(self, defs: Definitions, refs: tuple[str, ...], full_names: bool) -> Plan | None:
        """The plan resolved earlier for these refs, if it is still current."""
        self._records()  # drops the plans when the records expire
        by_refs = self._plans.get(defs)
        return None if by_refs is None else by_refs.get((refs, full_names))

    def record(self, name: str, version: int | None, defs: Definitions) -> VersionRecord:
        """The registered version a ref reads: ``version``, else the one these
        definitions define, else (a view they lack) the newest active one."""
        records = self._records()
        recs = [r for r in records if r.name == name]
        if not recs:
            known = sorted({r.name for r in records} | set(defs.views))
            if name in defs.views:
                raise InvalidInput(
                    f"Feature view {name!r} is defined but not applied.",
                    hint="Run `milepost features apply` first.",
                )
            raise self._registry.unknown(name, known)
        rec: VersionRecord | None
        if version is None:
            view = defs.views.get(name)
            fp = view.fingerprint() if view is not None else None
            rec = next((r for r in recs if r.fingerprint == fp), None)
            if rec is None:
                if view is not None:
                    raise InvalidInput(
                        f"The definition of {name!r} in {defs.origin} differs from every "
                        "registered version.",
                        hint="Run `milepost features apply`, or ask for a version "
                        f"explicitly ({name}:v{max(r.version for r in recs)}:feature).",
                    )
                rec = max((r for r in recs if r.active), key=lambda r: r.version, default=None)
                if rec is None:
                    raise InvalidInput(f"Every version of {name!r} is retired.")
        else:
            rec = next((r for r in recs if r.version == version), None)
            if rec is None:
                raise NotFound(
                    f"Feature view {name!r} has no version {version} (versions: "
                    f"{', '.join(str(r.version) for r in recs)})."
                )
        if not rec.active:
            raise InvalidInput(
                f"{rec.key} is retired.",
                hint="Use an active version, or apply its definition again.",
            )
        return rec

    def view(self, rec: VersionRecord, defs: Definitions) -> View:
        """The view object for a registered version: the definitions' own when it is
        that version, else rebuilt from the registry (see :mod:`.versions`)."""
        return versions.view_of(rec, self._records(), defs)

    def resolve(self, defs: Definitions, refs: Sequence[str], *, full_names: bool = False) -> Plan:
        """Turn ``view:feature`` / ``view:vN:feature`` refs into per-version requests."""
        key = tuple(refs)
        cached = self.cached(defs, key, full_names)
        if cached is not None:
            return cached
        stored: dict[str, ViewRequest] = {}
        on_demand: dict[str, OnDemandRequest] = {}
        wanted: list[tuple[str, str]] = []
        fingerprints: dict[str, str] = {}
        records: dict[str, VersionRecord] = {}
        for ref in refs:
            name, version, feat = parse_ref(ref)
            rec = self.record(name, version, defs)
            view = self.view(rec, defs)
            vkey = rec.key
            fingerprints[vkey] = rec.fingerprint
            if feat not in view.features:
                raise NotFound(
                    f"Feature view {vkey} has no feature {feat!r}."
                    f"{did_you_mean(feat, view.features)}",
                    hint="Features: " + ", ".join(view.features) + ".",
                )
            if isinstance(view, OnDemandFeatureView):
                entry = on_demand.setdefault(vkey, (view, rec.version, []))
                entry[2].append(feat)
                self._add_inputs(defs, view, stored, fingerprints, records)
            else:
                req = stored.setdefault(vkey, ViewRequest(view, rec.version, []))
                records[vkey] = rec
                if feat not in req.features:
                    req.features.append(feat)
            wanted.append((vkey, feat))
        versions_of: dict[str, str] = {}
        for vkey in [*stored, *on_demand]:
            view_name = vkey.split(":")[0]
            if versions_of.setdefault(view_name, vkey) != vkey:
                raise InvalidInput(
                    f"Two versions of {view_name!r} in one request "
                    f"({versions_of[view_name]}, {vkey}); ask for one."
                )
        names = {
            (vkey, feat): f"{vkey.split(':')[0]}__{feat}"
            for vkey, req in stored.items()
            for feat in req.features
        }
        short = [f for _, f in wanted]
        output, internal = [], []
        for vkey, feat in wanted:
            full = f"{vkey.split(':')[0]}__{feat}"
            if not full_names and short.count(feat) > 1:
                raise InvalidInput(
                    f"Feature {feat!r} is requested from several views.",
                    hint="Pass full_feature_names=True to get view__feature columns.",
                )
            output.append(full if full_names else feat)
            internal.append(full)
        plan = Plan(
            list(stored.values()),
            list(on_demand.values()),
            names,
            output,
            internal,
            fingerprints,
            records,
        )
        self._plans.setdefault(defs, {})[(key, full_names)] = plan
        return plan

    def _add_inputs(
        self,
        defs: Definitions,
        view: OnDemandFeatureView,
        stored: dict[str, ViewRequest],
        fingerprints: dict[str, str],
        records: dict[str, VersionRecord],
    ) -> None:
        """Add the stored features an on-demand view reads, at the versions it reads."""
        fingerprints_of = {v.name: v.fingerprint() for v in view.sources}
        for src_ref in view.input_refs:
            sname, sfeat = src_ref.split(":")
            fingerprint = fingerprints_of[sname]
            known = next(
                (r for r in self._records() if r.name == sname and r.fingerprint == fingerprint),
                None,
            )
            srec = self.record(sname, None if known is None else known.version, defs)
            skey = srec.key
            fingerprints[skey] = srec.fingerprint
            records[skey] = srec
            source_view = self.view(srec, defs)
            assert isinstance(source_view, FeatureView)
            sreq = stored.setdefault(skey, ViewRequest(source_view, srec.version, []))
            if sfeat not in sreq.features:
                sreq.features.append(sfeat)
