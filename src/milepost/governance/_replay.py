"""Replay the audit chain into the state it records, and compare that with the tables.

A valid chain proves only that its events were not changed; this check proves that the
current state is the one the events describe, so a direct ``UPDATE model_versions SET
stage = 'Production'`` (or an alias, an endpoint's weights, a role, a promotion request
flipped to completed), and objects that exist with no event at all, are named.

What each action must carry for the replay (writers: keep these fields):

=========================  ===========================================================
action                     state it sets
=========================  ===========================================================
``model.create``           model ``object_id`` exists
``model_version.register`` version ``NAME/VERSION`` exists, in stage None
``model_version.stage``    ``after.changes``: ``[[version, from, to], ...]`` of that
                           model; ``after.request_id`` completes that request (with
                           ``after.gates``: ``[{"status": ...}, ...]``)
``model.alias``            ``NAME@ALIAS`` points at ``after.version`` (None: removed)
``endpoint.create``,       endpoint ``object_id`` routes ``after.variants`` (name,
``deploy.*``               model, version, role, weight, share) and tracks
                           ``after.track`` (``{"model", "stage"}``; absent or None:
                           pinned)
``role.grant``/``revoke``  ``after``/``before``: ``{"actor", "role"}``
``promotion.*``            ``after.request_id`` has ``after.status``, ``after.gates``
                           and ``after.approvers`` (each optional but ``status``)
``model_card.update``      model ``object_id``'s card section ``after.field`` at
                           ``after.version`` (0: the model) holds ``after.text``
                           (None: removed)
``audit.baseline``         ``after.promotion_requests``: ``{id: {status, gates,
                           approvers}}``, written once by schema revision 0006 for
                           requests whose older events lack those fields
``run.start``,             counted: there must be at least as many events as rows
``experiment.create``,
``dataset.register``,
``pipeline_run.start``,
``trigger.create``,
``fairness.audit``
=========================  ===========================================================

Beyond the replay, an endpoint that tracks a stage must serve, as its primary, the
version the registry has in that stage (both change in one transaction, so any
difference was made behind Milepost's back).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from milepost.stores.schema import (
    dataset_versions,
    endpoints,
    experiments,
    fairness_audits,
    gate_results,
    model_aliases,
    model_card_fields,
    model_versions,
    pipeline_runs,
    pipeline_triggers,
    promotion_requests,
    registered_models,
    roles,
    runs,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.engine import Connection

    from milepost.stores.audit import StoredEvent

__all__ = ["StateReplay"]

# action -> (what the rows are called, their table)
_COUNTED: dict[str, tuple[str, sa.Table]] = {
    "experiment.create": ("experiments", experiments),
    "run.start": ("runs", runs),
    "dataset.register": ("dataset versions", dataset_versions),
    "pipeline_run.start": ("pipeline runs", pipeline_runs),
    "trigger.create": ("triggers", pipeline_triggers),
    "fairness.audit": ("fairness audits", fairness_audits),
}

Traffic = tuple[tuple[str, str, int, str, float, float], ...]


@dataclass
class _Seen:
    """A value the chain set, and the event that set it last."""

    value: Any
    seq: int


@dataclass
class _Request:
    seq: int
    status: str | None = None
    gates: list[str] | None = None
    approvers: list[str] | None = None


def _obj(text: Any) -> dict[str, Any]:
    """A stored ``before``/``after`` as a dict (anything else, e.g. an edited one: empty)."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _traffic(variants: Any) -> Traffic | None:
    """Who takes which traffic, in a comparable form (None: not a list of variants)."""
    if not isinstance(variants, list):
        return None
    out = []
    for v in variants:
        if not isinstance(v, dict):
            return None
        try:
            out.append(
                (
                    str(v.get("name")),
                    str(v.get("model")),
                    int(v.get("version") or 0),
                    str(v.get("role")),
                    float(v.get("weight") or 0.0),
                    float(v.get("share") or 0.0),
                )
            )
        except (TypeError, ValueError):
            return None
    return tuple(out)


def _track(value: Any) -> tuple[str, str] | None:
    """What an endpoint tracks, comparable (None: pinned, or not recorded)."""
    if not isinstance(value, dict):
        return None
    return (str(value.get("model")), str(value.get("stage")))


def _tracks(track: tuple[str, str] | None) -> str:
    return "nothing (pinned)" if track is None else f"{track[1]} of {track[0]}"


def _describe(traffic: Traffic | None) -> str:
    if not traffic:
        return "nothing"
    parts = []
    for name, model, version, role, weight, share in traffic:
        text = f"{name} {role}"
        if name != f"{model}-v{version}":
            text += f" ({model} v{version})"
        if weight:
            text += f" {weight:g}%"
        if share:
            text += f" mirroring {share:g}"
        parts.append(text)
    return ", ".join(parts)


def _statuses(gates: Any) -> list[str] | None:
    if not isinstance(gates, list):
        return None
    return [str(g.get("status")) if isinstance(g, dict) else str(g) for g in gates]


def _names(values: Any) -> list[str] | None:
    if not isinstance(values, list):
        return None
    return sorted(str(v) for v in values)


def _int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return -1  # an edited event; the chain check names it


def _plural(n: int) -> str:
    return "was" if n == 1 else "were"


class StateReplay:
    """Feed every stored event in order to :meth:`apply`, then call :meth:`compare`."""

    def __init__(self) -> None:
        self.models: dict[str, int] = {}
        self.versions: dict[tuple[str, int], _Seen] = {}
        self.aliases: dict[tuple[str, str], _Seen] = {}
        self.endpoints: dict[str, _Seen] = {}
        self.tracks: dict[str, _Seen] = {}
        self.roles: dict[tuple[str, str], _Seen] = {}
        self.requests: dict[str, _Request] = {}
        self.card_fields: dict[tuple[str, int, str], _Seen] = {}
        self.counts: Counter[str] = Counter()
        self.problems: list[tuple[int, str]] = []
        self._recorded_requests = False  # a promotion event carried its status
        self._baseline_seen = False
        self._handlers: dict[str, Callable[[int, StoredEvent], None]] = {
            "model.create": self._model,
            "model_version.register": self._register,
            "model_version.stage": self._stage,
            "model.alias": self._alias,
            "endpoint.create": self._endpoint,
            "role.grant": self._grant,
            "role.revoke": self._revoke,
            "model_card.update": self._card_field,
            "audit.baseline": self._baseline,
        }

    # -- replay ---------------------------------------------------------------------

    def apply(self, row: StoredEvent) -> None:
        """Take one stored event (``before``/``after`` as stored JSON text)."""
        action = row.action
        if action in _COUNTED:
            self.counts[action] += 1
            return
        handler = self._handlers.get(action)
        if handler is None:
            if action.startswith("deploy."):
                handler = self._endpoint
            elif action.startswith("promotion."):
                handler = self._promotion
            else:
                return
        handler(int(row.seq), row)

    def _model(self, seq: int, row: StoredEvent) -> None:
        self.models[row.object_id] = seq

    def _register(self, seq: int, row: StoredEvent) -> None:
        name, _, version = row.object_id.rpartition("/")
        if version.isdigit():
            self.versions[(name, int(version))] = _Seen("None", seq)

    def _stage(self, seq: int, row: StoredEvent) -> None:
        name = row.object_id.rpartition("/")[0]
        after = _obj(row.after)
        for change in after.get("changes") or []:
            if isinstance(change, list) and len(change) == 3 and str(change[0]).isdigit():
                self.versions[(name, int(change[0]))] = _Seen(str(change[2]), seq)
        request_id = after.get("request_id")
        if request_id:
            request = self.requests.setdefault(str(request_id), _Request(seq))
            request.seq, request.status = seq, "completed"
            gates = _statuses(after.get("gates"))
            if gates is not None:
                request.gates = gates

    def _alias(self, seq: int, row: StoredEvent) -> None:
        name, _, alias = row.object_id.rpartition("@")
        self.aliases[(name, alias)] = _Seen(_int(_obj(row.after).get("version")), seq)

    def _endpoint(self, seq: int, row: StoredEvent) -> None:
        if row.object_type == "endpoint":
            after = _obj(row.after)
            traffic = _traffic(after.get("variants"))
            self.endpoints[row.object_id] = _Seen(traffic, seq)
            self.tracks[row.object_id] = _Seen(_track(after.get("track")), seq)

    def _grant(self, seq: int, row: StoredEvent) -> None:
        after = _obj(row.after)
        self.roles[(str(after.get("actor")), str(after.get("role")))] = _Seen(True, seq)

    def _revoke(self, seq: int, row: StoredEvent) -> None:
        before = _obj(row.before)
        self.roles[(str(before.get("actor")), str(before.get("role")))] = _Seen(False, seq)

    def _card_field(self, seq: int, row: StoredEvent) -> None:
        after = _obj(row.after)
        version, text = _int(after.get("version")), after.get("text")
        if version is not None and after.get("field"):
            key = (row.object_id, version, str(after["field"]))
            self.card_fields[key] = _Seen(None if text is None else str(text), seq)

    def _promotion(self, seq: int, row: StoredEvent) -> None:
        after = _obj(row.after)
        request_id, status = after.get("request_id"), after.get("status")
        if not request_id or not status:
            return  # written before requests were recorded: the baseline covers them
        self._recorded_requests = True
        request = self.requests.setdefault(str(request_id), _Request(seq))
        request.seq, request.status = seq, str(status)
        gates, approvers = _statuses(after.get("gates")), _names(after.get("approvers"))
        if gates is not None:
            request.gates = gates
        if approvers is not None:
            request.approvers = approvers

    def _baseline(self, seq: int, row: StoredEvent) -> None:
        if self._recorded_requests or self._baseline_seen:
            self.problems.append(
                (
                    seq,
                    f"event {seq} (audit.baseline) resets the recorded state of promotion "
                    "requests, but only schema revision 0006 writes one, once, before any "
                    "request is recorded: this one was forged.",
                )
            )
            return
        self._baseline_seen = True
        state = _obj(row.after).get("promotion_requests")
        for request_id, recorded in (state if isinstance(state, dict) else {}).items():
            values = recorded if isinstance(recorded, dict) else {}
            self.requests[str(request_id)] = _Request(
                seq,
                str(values.get("status")),
                _statuses(values.get("gates")),
                _names(values.get("approvers")),
            )

    # -- compare --------------------------------------------------------------------

    def compare(self, conn: Connection) -> list[tuple[int, str]]:
        """Every difference between the replayed state and the tables: ``(seq, message)``.

        ``seq`` is the event that last set the expected value (0 when none did).
        """
        found = list(self.problems)
        for check in (
            self._compare_models,
            self._compare_versions,
            self._compare_aliases,
            self._compare_endpoints,
            self._compare_tracking,
            self._compare_roles,
            self._compare_requests,
            self._compare_card_fields,
            self._compare_counts,
        ):
            found += check(conn)
        return found

    def _compare_models(self, conn: Connection) -> list[tuple[int, str]]:
        names = set(conn.execute(sa.select(registered_models.c.name)).scalars())
        found = [
            (0, f"model {n} exists but no event created it.")
            for n in sorted(names - set(self.models))
        ]
        found += [
            (self.models[n], f"model {n} was created (event {self.models[n]}) but is missing.")
            for n in sorted(set(self.models) - names)
        ]
        return found

    def _compare_versions(self, conn: Connection) -> list[tuple[int, str]]:
        rows = conn.execute(
            sa.select(registered_models.c.name, model_versions.c.version, model_versions.c.stage)
            .join(registered_models, registered_models.c.model_id == model_versions.c.model_id)
            .order_by(registered_models.c.name, model_versions.c.version)
        ).all()
        found = []
        present = set()
        for name, version, stage in rows:
            present.add((name, int(version)))
            seen = self.versions.get((name, int(version)))
            if seen is None:
                found.append((0, f"{name} v{version} is in {stage} but no event registered it."))
            elif seen.value != stage:
                found.append(
                    (
                        seen.seq,
                        f"{name} v{version} is in {stage} but the audit trail last put it in "
                        f"{seen.value} (event {seen.seq}).",
                    )
                )
        for (name, version), seen in sorted(self.versions.items()):
            if (name, version) not in present:
                found.append(
                    (
                        seen.seq,
                        f"{name} v{version} is missing from the registry, but the audit "
                        f"trail last put it in {seen.value} (event {seen.seq}).",
                    )
                )
        return found

    def _compare_aliases(self, conn: Connection) -> list[tuple[int, str]]:
        rows = conn.execute(
            sa.select(registered_models.c.name, model_aliases.c.alias, model_versions.c.version)
            .join(registered_models, registered_models.c.model_id == model_aliases.c.model_id)
            .join(model_versions, model_versions.c.version_id == model_aliases.c.version_id)
        ).all()
        current = {(name, alias): int(version) for name, alias, version in rows}
        found = []
        for key in sorted(set(current) | set(self.aliases)):
            name, alias = key
            seen, version = self.aliases.get(key), current.get(key)
            expected = None if seen is None else seen.value
            if version == expected:
                continue
            if version is None and seen is not None:
                found.append(
                    (
                        seen.seq,
                        f"{name}@{alias} was set to v{expected} (event {seen.seq}) but is missing.",
                    )
                )
            elif seen is None:
                found.append((0, f"{name}@{alias} points at v{version} but no event set it."))
            elif expected is None:
                found.append(
                    (
                        seen.seq,
                        f"{name}@{alias} points at v{version} but the audit trail last "
                        f"removed it (event {seen.seq}).",
                    )
                )
            else:
                found.append(
                    (
                        seen.seq,
                        f"{name}@{alias} points at v{version} but the audit trail last pointed "
                        f"it at v{expected} (event {seen.seq}).",
                    )
                )
        return found

    def _compare_endpoints(self, conn: Connection) -> list[tuple[int, str]]:
        rows = conn.execute(sa.select(endpoints.c.name, endpoints.c.spec_json)).all()
        current = {name: _traffic(_obj(spec).get("variants")) for name, spec in rows}
        found = []
        for name in sorted(set(current) | set(self.endpoints)):
            seen = self.endpoints.get(name)
            if name not in current and seen is not None:
                found.append(
                    (seen.seq, f"endpoint {name} was created (event {seen.seq}) but is missing.")
                )
            elif seen is None:
                found.append((0, f"endpoint {name} exists but no event created it."))
            elif current[name] != seen.value:
                found.append(
                    (
                        seen.seq,
                        f"endpoint {name} routes {_describe(current[name])} but the audit "
                        f"trail last recorded {_describe(seen.value)} (event {seen.seq}).",
                    )
                )
        return found

    def _compare_tracking(self, conn: Connection) -> list[tuple[int, str]]:
        """What each endpoint tracks, as recorded; and that a tracking endpoint's primary
        is the registry's version in that stage."""
        rows = conn.execute(
            sa.select(
                endpoints.c.name,
                endpoints.c.spec_json,
                endpoints.c.track_model,
                endpoints.c.track_stage,
            ).order_by(endpoints.c.name)
        ).all()
        found = []
        for name, spec_json, model, stage in rows:
            spec = _obj(spec_json)
            columns = None if model is None else (str(model), str(stage))
            seen = self.tracks.get(name)
            for what, value in (("", columns), (" in its spec", _track(spec.get("track")))):
                if seen is not None and value != seen.value:
                    found.append(
                        (
                            seen.seq,
                            f"endpoint {name} tracks {_tracks(value)}{what} but the audit "
                            f"trail last recorded {_tracks(seen.value)} (event {seen.seq}).",
                        )
                    )
            if columns is None:
                continue
            primary = [
                v.get("version")
                for v in spec.get("variants") or []
                if isinstance(v, dict) and v.get("role") == "primary"
            ]
            held = conn.execute(
                sa.select(model_versions.c.version)
                .join(registered_models, registered_models.c.model_id == model_versions.c.model_id)
                .where(registered_models.c.name == model, model_versions.c.stage == stage)
            ).scalars()
            in_stage = sorted(int(v) for v in held)
            if [_int(v) for v in primary] != in_stage:
                found.append(
                    (
                        0,
                        f"endpoint {name} tracks {stage} of {model} and serves "
                        + (", ".join(f"v{v}" for v in primary) or "nothing")
                        + " as its primary, but the registry has "
                        + (", ".join(f"v{v}" for v in in_stage) or "no version")
                        + f" in {stage}.",
                    )
                )
        return found

    def _compare_roles(self, conn: Connection) -> list[tuple[int, str]]:
        held = {(a, r) for a, r in conn.execute(sa.select(roles.c.actor, roles.c.role))}
        granted = {key for key, seen in self.roles.items() if seen.value}
        found = []
        for actor, role in sorted(held | granted):
            seen = self.roles.get((actor, role))
            if (actor, role) in held and (actor, role) not in granted:
                if seen is None:
                    found.append((0, f"{actor} holds {role} but no event granted it."))
                else:
                    found.append(
                        (
                            seen.seq,
                            f"{actor} holds {role} but the audit trail last revoked it "
                            f"(event {seen.seq}).",
                        )
                    )
            elif (actor, role) not in held and seen is not None:
                found.append(
                    (
                        seen.seq,
                        f"{actor} was granted {role} (event {seen.seq}) but no longer holds it, "
                        "and no event revoked it.",
                    )
                )
        return found

    def _compare_requests(self, conn: Connection) -> list[tuple[int, str]]:
        rows = conn.execute(
            sa.select(
                promotion_requests.c.request_id,
                promotion_requests.c.status,
                promotion_requests.c.target_stage,
                registered_models.c.name,
                model_versions.c.version,
            )
            .join(registered_models, registered_models.c.model_id == promotion_requests.c.model_id)
            .join(model_versions, model_versions.c.version_id == promotion_requests.c.version_id)
            .order_by(promotion_requests.c.created_at, promotion_requests.c.request_id)
        ).all()
        gates: dict[str, list[str]] = {}
        approvers: dict[str, list[str]] = {}
        for request_id, kind, status, details in conn.execute(
            sa.select(
                gate_results.c.request_id,
                gate_results.c.kind,
                gate_results.c.status,
                gate_results.c.details_json,
            ).order_by(gate_results.c.request_id, gate_results.c.position)
        ):
            gates.setdefault(request_id, []).append(status)
            if kind == "approval":
                names = approvers.setdefault(request_id, [])
                for a in _obj(details).get("approvals") or []:
                    names.append(str(a.get("actor")) if isinstance(a, dict) else str(a))
        found = []
        present = set()
        for request_id, status, target, name, version in rows:
            present.add(request_id)
            what = f"promotion request {request_id[:12]} ({name} v{version} to {target})"
            seen = self.requests.get(request_id)
            if seen is None or seen.status is None:
                found.append((0, f"{what} exists but no event recorded it."))
                continue
            where = f"(event {seen.seq})"
            if status != seen.status:
                found.append(
                    (
                        seen.seq,
                        f"{what} is {status} but the audit trail last recorded {seen.status} "
                        f"{where}.",
                    )
                )
            have = gates.get(request_id, [])
            if seen.gates is not None and have != seen.gates:
                found.append(
                    (
                        seen.seq,
                        f"{what}: its gates are [{', '.join(have)}] but the audit trail last "
                        f"recorded [{', '.join(seen.gates)}] {where}.",
                    )
                )
            by = sorted(approvers.get(request_id, []))
            if seen.approvers is not None and by != seen.approvers:
                recorded = (
                    f"approvals by {', '.join(seen.approvers)}" if seen.approvers else "no approval"
                )
                found.append(
                    (
                        seen.seq,
                        f"{what} is "
                        + (f"approved by {', '.join(by)}" if by else "not approved by anyone")
                        + f" but the audit trail records {recorded} {where}.",
                    )
                )
        for request_id, seen in self.requests.items():
            if request_id not in present and seen.status is not None:
                found.append(
                    (
                        seen.seq,
                        f"promotion request {request_id[:12]} was recorded (event {seen.seq}) "
                        "but is missing.",
                    )
                )
        return found

    def _compare_card_fields(self, conn: Connection) -> list[tuple[int, str]]:
        rows = conn.execute(
            sa.select(
                registered_models.c.name,
                model_card_fields.c.version,
                model_card_fields.c.field,
                model_card_fields.c.text,
            ).join(registered_models, registered_models.c.model_id == model_card_fields.c.model_id)
        )
        actual = {(r.name, int(r.version), r.field): r.text for r in rows}
        found = []
        for key in sorted(set(actual) | set(self.card_fields)):
            name, version, field = key
            where = f"card section {field} of {name}" + (f" v{version}" if version else "")
            seen = self.card_fields.get(key)
            expected = seen.value if seen else None
            if actual.get(key) == expected:
                continue
            if seen is None:
                found.append((0, f"{where} exists but no event wrote it."))
            elif key not in actual:
                found.append((seen.seq, f"{where} was written (event {seen.seq}) but is missing."))
            else:
                found.append(
                    (seen.seq, f"{where} differs from the text event {seen.seq} recorded.")
                )
        return found

    def _compare_counts(self, conn: Connection) -> list[tuple[int, str]]:
        found = []
        for action, (plural, table) in _COUNTED.items():
            rows = int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
            events = self.counts[action]
            if rows > events:
                extra = rows - events
                found.append(
                    (
                        0,
                        f"{rows} {plural} exist but only {events} {action} events are "
                        f"recorded: {extra} {_plural(extra)} created without an event.",
                    )
                )
        return found
