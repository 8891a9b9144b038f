"""Reading and verifying the audit trail.

``verify`` walks the whole chain once and names each problem it finds:

- **edited**: an event's content no longer matches its hash;
- **deleted**: a gap in the sequence numbers, or fewer events than the head records;
- **reordered**: an event sits at another position than the one it was written at;
- **broken_link**: an event does not follow the one before it (its ``prev_hash``);
- **forged**: events stored past the head (the database moves the head with every event,
  so they were inserted by hand, with its guards removed);
- **anchor**: a head recorded earlier outside the store (``milepost audit head``) no
  longer matches, or the head moved backwards: this catches someone who rewrote the
  chain and recomputed every hash, or deleted it and reset the head;
- **state**: the current stages, aliases, endpoint routing, roles and promotion requests
  differ from what the chain records, or objects exist that no event created;
- **unprotected**: a database guard on the audit tables was dropped, disabled or
  redefined.

What it cannot catch: someone with write access to the database who appends correctly
hashed events *and* changes the state to match does what Milepost itself does; in
embedded mode nothing tells the two apart (the server's tokens will tie actors to people).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from milepost import _validate as check
from milepost._records import record_dict
from milepost.errors import InvalidInput, NotFound
from milepost.governance._replay import StateReplay
from milepost.stores import audit_guards
from milepost.stores.audit import (
    GENESIS_HASH,
    AuditEvent,
    StoredEvent,
    event_filters,
    event_hash,
    iter_rows,
    query_events,
    read_head,
    stored_row,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from milepost.stores.metadata import MetadataStore

__all__ = ["AuditProblem", "AuditService", "ExportSummary", "VerifyReport", "export_to"]

ProblemKind = Literal[
    "edited",
    "deleted",
    "reordered",
    "broken_link",
    "forged",
    "anchor",
    "state",
    "unprotected",
]


@dataclass(frozen=True)
class AuditProblem:
    """One finding of :meth:`AuditService.verify`.

    ``seq`` is the event concerned (for ``state``: the event that last set the expected
    value; 0 when there is none, or for ``unprotected``).
    """

    kind: ProblemKind
    seq: int
    message: str


@dataclass(frozen=True)
class VerifyReport:
    """The result of verifying the chain."""

    checked: int
    head_seq: int
    head_hash: str
    problems: list[AuditProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    @property
    def anchor(self) -> str:
        """``SEQ:HASH`` of the head, to keep outside the store."""
        return f"{self.head_seq}:{self.head_hash}"

    def __repr__(self) -> str:
        verdict = "intact" if self.ok else f"{len(self.problems)} problem(s)"
        return f"VerifyReport({self.checked} events, {verdict}, head {self.anchor[:25]}…)"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "ok": self.ok,
            "checked": self.checked,
            "head": {"seq": self.head_seq, "hash": self.head_hash, "anchor": self.anchor},
            "problems": [
                {"kind": p.kind, "seq": p.seq, "message": p.message} for p in self.problems
            ],
        }


class AuditService:
    """List and verify audit events. Appending happens inside each capability's writes."""

    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    def list(
        self,
        *,
        object_type: str | None = None,
        object_id: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        limit: int = 100,
        before_seq: int | None = None,
    ) -> list[AuditEvent]:
        """Events, newest first, filtered by any of the arguments.

        ``action`` accepts ``*`` as a wildcard (``run.*``); ``since_ms`` is inclusive and
        ``until_ms`` exclusive (ms since the epoch, UTC). ``before_seq`` pages: only
        events older than that sequence number (pass the last ``seq`` of a page to get
        the next one).
        """
        check.integer(limit, "limit", minimum=1)
        if before_seq is not None:
            check.integer(before_seq, "before_seq", minimum=1)
        filters = _check_filters(object_type, object_id, actor, action, since_ms, until_ms)
        with self._store.read() as conn:
            return query_events(conn, limit=limit, before_seq=before_seq, **filters)

    def export(
        self,
        dest: IO[str] | str | Path,
        *,
        object_type: str | None = None,
        object_id: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
    ) -> ExportSummary:
        """Write the matching events as JSON lines, oldest first, one event per line.

        Each line is an event as :meth:`AuditEvent.to_dict` gives it (``before`` and
        ``after`` as JSON data, with ``seq``, ``prev_hash`` and ``hash``), so the export
        can be checked away from the store with :meth:`verify_export`. The events are
        read in one snapshot, in batches (an export of millions of events does not sit in
        memory). A path is written to a temporary file beside it and renamed at the end:
        a failed export leaves no partial file.

        Args:
            dest: a path, or an open text stream (e.g. ``sys.stdout``).
            object_type, object_id, actor, action, since_ms, until_ms: as :meth:`list`.

        Returns:
            How many events were written, their sequence range and the chain's head when
            the export was read (keep it to anchor a later ``verify --expect-head``).
        """
        filters = _check_filters(object_type, object_id, actor, action, since_ms, until_ms)
        return export_to(dest, lambda out: self._export(out, filters))

    def _export(self, out: IO[str], filters: dict[str, Any]) -> ExportSummary:
        count, first, last = 0, None, None
        with self._store.read() as conn:
            if conn.dialect.name == "postgresql":
                conn.execution_options(isolation_level="REPEATABLE READ")
            head_seq, head_hash = read_head(conn)
            for row in iter_rows(conn, where=event_filters(**filters)):
                out.write(json.dumps(row.exported(), sort_keys=True) + "\n")
                count += 1
                first = row.seq if first is None else first
                last = row.seq
        return ExportSummary(
            events=count,
            first_seq=first,
            last_seq=last,
            head=f"{head_seq}:{head_hash}",
            filters={k: v for k, v in filters.items() if v is not None},
        )

    @staticmethod
    def verify_export(
        source: IO[str] | str | Path, *, partial: bool = False, expect_head: str | None = None
    ) -> VerifyReport:
        """Check an export away from the store: every event's hash matches its content, each
        event follows the one before it where their sequence numbers are consecutive, and
        (unless ``partial``, for a filtered export) the export starts at the first event
        and has no gaps. ``expect_head`` (``SEQ:HASH`` or a hash, e.g. the ``head`` an
        export printed or one kept elsewhere) must be in the export with that hash.

        Raises:
            InvalidInput: a line is not an exported event (names the line).
        """
        expected = _parse_anchor(expect_head) if expect_head is not None else None
        check.boolean(partial, "partial")
        if isinstance(source, str) and "\n" in source:
            raise InvalidInput(
                "verify_export takes a path or an open file, not the export's text.",
                hint="Pass io.StringIO(text) to check text held in memory.",
            )
        if not isinstance(source, (str, Path)) and not callable(getattr(source, "readline", None)):
            raise InvalidInput(
                f"Cannot read an audit export from {check.short_repr(source)}.",
                hint="Pass the path of a file written by `milepost audit export`, or an open "
                "text file.",
            )
        if isinstance(source, (str, Path)):
            path = check.local_path(source, "The audit export's path")
            if not path.is_file():
                raise NotFound(f"No audit export at {path}.")
            with path.open(encoding="utf-8") as handle:
                return _verify_lines(handle, partial, expected)
        return _verify_lines(source, partial, expected)

    def head(self) -> tuple[int, str]:
        """The newest event's ``(seq, hash)``: record it elsewhere as an anchor."""
        with self._store.read() as conn:
            return read_head(conn)

    def head_anchor(self) -> str:
        """The head as ``SEQ:HASH``, the form :meth:`verify` takes as ``expect_head``."""
        seq, digest = self.head()
        return f"{seq}:{digest}"

    def verify(self, *, expect_head: str | None = None, anchor: str | None = None) -> VerifyReport:
        """Walk the whole chain, compare it with the current state, report every problem.

        Args:
            expect_head: a head recorded earlier outside the store, as printed by
                :meth:`head_anchor` (``SEQ:HASH``) or its hash alone. The event at SEQ
                (or some event, for a bare hash) must still have that hash, and the head
                must not have moved back before it.
            anchor: the older name of ``expect_head``.

        Raises:
            InvalidInput: ``expect_head`` is neither ``SEQ:HASH`` nor a 64-digit hex hash.
        """
        for value in (expect_head, anchor):
            if value is not None and not isinstance(value, str):
                _parse_anchor(value)  # says it is not text
        if expect_head and anchor and expect_head != anchor:
            raise InvalidInput(
                "Give the expected head once: expect_head and anchor are the same option.",
            )
        given = expect_head if expect_head is not None else anchor
        expected = _parse_anchor(given) if given is not None else None
        with self._store.read() as conn:
            if conn.dialect.name == "postgresql":
                # one snapshot for the chain and the state, however long the walk takes
                conn.execution_options(isolation_level="REPEATABLE READ")
            walk = _Walk(*read_head(conn), expected)
            replay = StateReplay()
            for row in iter_rows(conn):
                walk.step(row)
                replay.apply(row)
            problems = walk.finish()
            problems += [AuditProblem("state", seq, msg) for seq, msg in replay.compare(conn)]
            problems += [AuditProblem("unprotected", 0, m) for m in audit_guards.problems(conn)]
        return VerifyReport(
            checked=walk.checked,
            head_seq=walk.head_seq,
            head_hash=walk.head_hash,
            problems=problems,
        )


class _Walk:
    """The chain check proper: fed each stored row in ``seq`` order."""

    def __init__(self, head_seq: int, head_hash: str, expected: tuple[int | None, str] | None):
        self.head_seq, self.head_hash = head_seq, head_hash
        self.anchor_seq: int | None = expected[0] if expected else None
        self.anchor_hash: str | None = expected[1] if expected else None
        self.anchor_found: int | None = None
        self.problems: list[AuditProblem] = []
        self.expected_seq = 1
        self.prev_hash = GENESIS_HASH
        self.prev_flagged = False
        self.checked = 0
        self.hash_at_head: str | None = None

    def step(self, row: StoredEvent) -> None:
        self.checked += 1
        seq = int(row.seq)
        expected_seq = self.expected_seq
        if seq > expected_seq:
            missing = (
                f"event {expected_seq}"
                if seq - expected_seq == 1
                else f"events {expected_seq}..{seq - 1}"
            )
            self._add("deleted", expected_seq, f"{missing} deleted (gap before {seq}).")
        problems_before = len(self.problems)
        if row.content_hash() != row.hash:
            origin = _written_at(row, seq)
            what = f"{row.action} on {row.object_type} {row.object_id}"
            if origin is not None:
                self._add(
                    "reordered",
                    seq,
                    f"event {seq} was written as event {origin} and moved ({what}).",
                )
            else:
                self._add(
                    "edited",
                    seq,
                    f"event {seq} ({what}) was changed after it was written: its content no "
                    "longer matches its hash.",
                )
        elif row.prev_hash != self.prev_hash and seq == expected_seq and not self.prev_flagged:
            # (a link broken by a neighbour already reported is not news)
            self._add(
                "broken_link",
                seq,
                f"event {seq} does not follow event {seq - 1}: the chain link between them "
                "is broken.",
            )
        if seq == self.head_seq:
            self.hash_at_head = row.hash
        if self.anchor_hash is not None and self.anchor_found is None:
            if self.anchor_seq is None and row.hash == self.anchor_hash:
                self.anchor_found = seq
            elif self.anchor_seq == seq:
                self.anchor_found = seq
                if row.hash != self.anchor_hash:
                    self._add(
                        "anchor",
                        seq,
                        f"event {seq} has hash {row.hash[:12]}..., but the expected head "
                        f"says {self.anchor_hash[:12]}...: the chain was rewritten.",
                    )
        self.prev_hash = row.hash
        self.prev_flagged = len(self.problems) > problems_before
        self.expected_seq = seq + 1

    def _add(self, kind: ProblemKind, seq: int, message: str) -> None:
        self.problems.append(AuditProblem(kind, seq, message))

    def finish(self) -> list[AuditProblem]:
        last_seq, head_seq = self.expected_seq - 1, self.head_seq
        if head_seq > last_seq:
            missing = (
                f"event {head_seq}"
                if head_seq == last_seq + 1
                else f"events {last_seq + 1}..{head_seq}"
            )
            self._add(
                "deleted", last_seq + 1, f"{missing} deleted: the head records {head_seq} events."
            )
        else:
            if (
                head_seq > 0
                and self.hash_at_head is not None
                and self.hash_at_head != self.head_hash
            ):
                self._add("edited", head_seq, f"event {head_seq} does not match the head's hash.")
            if last_seq > head_seq:
                past = (
                    f"event {last_seq} was"
                    if last_seq == head_seq + 1
                    else f"events {head_seq + 1}..{last_seq} were"
                )
                self._add(
                    "forged",
                    head_seq + 1,
                    f"{past} inserted past the head (which records {head_seq}): forged, since "
                    "Milepost moves the head with every event it writes.",
                )
        if self.anchor_hash is not None:
            self._finish_anchor()
        return self.problems

    def _finish_anchor(self) -> None:
        seq, digest = self.anchor_seq, self.anchor_hash or ""
        if seq is not None and seq > self.head_seq:
            self._add(
                "anchor",
                seq,
                f"the head moved backwards from {seq} to {self.head_seq}: the events after "
                f"{self.head_seq} were removed and the head reset.",
            )
        elif seq is not None and self.anchor_found is None:
            self._add("anchor", seq, f"anchored event {seq} is missing.")
        elif seq is None and self.anchor_found is None:
            self._add(
                "anchor",
                0,
                f"no event has hash {digest[:12]}... (the expected head): the chain was "
                "rewritten or cut back.",
            )


_MOVE_WINDOW = 1000


def _written_at(row: StoredEvent, seq: int) -> int | None:
    """The position an event was written at, when it matches its hash there."""
    for delta in range(1, _MOVE_WINDOW + 1):
        for candidate in (seq - delta, seq + delta):
            if candidate > 0 and row.content_hash(seq=candidate) == row.hash:
                return candidate
    return None


_HASH = re.compile(r"^[0-9a-f]{64}$")


def _parse_anchor(anchor: str) -> tuple[int | None, str]:
    """``SEQ:HASH`` or ``HASH`` as ``(seq or None, lower-case hash)``."""
    if not isinstance(anchor, str):
        raise InvalidInput(
            f"Expected head {anchor!r} is not text: give SEQ:HASH or HASH.",
            hint="Use the value printed by `milepost audit head`.",
        )
    seq_text, sep, digest = anchor.strip().rpartition(":")
    digest = digest.lower()
    if (sep and not (seq_text.isascii() and seq_text.isdigit())) or not _HASH.fullmatch(digest):
        raise InvalidInput(
            f"Expected head {anchor!r} is neither SEQ:HASH nor HASH (64 hex digits).",
            hint="Use the value printed by `milepost audit head`.",
        )
    seq = int(seq_text) if sep else None
    if seq is not None and seq > check.INT64_MAX:
        raise InvalidInput(
            f"Expected head {check.short_repr(anchor)}: the sequence number is out of range.",
            hint="Use the value printed by `milepost audit head`.",
        )
    return seq, digest


@dataclass(frozen=True)
class ExportSummary:
    """What :meth:`AuditService.export` wrote."""

    events: int
    first_seq: int | None
    last_seq: int | None
    head: str  # the chain's head (SEQ:HASH) when the export was read
    filters: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return record_dict(self)

    def __repr__(self) -> str:
        span = f" {self.first_seq}..{self.last_seq}" if self.events else ""
        return f"ExportSummary({self.events} events{span}, head {self.head[:20]})"


_EXPORT_KEYS = frozenset(
    (
        "seq",
        "event_id",
        "time",
        "actor",
        "action",
        "object_type",
        "object_id",
        "before",
        "after",
        "reason",
        "prev_hash",
        "hash",
    )
)


def _verify_lines(
    lines: Iterable[str], partial: bool, expected: tuple[int | None, str] | None
) -> VerifyReport:
    problems: list[AuditProblem] = []
    prev: tuple[int, str] | None = None
    checked, found = 0, expected is None
    last_seq, last_hash = 0, GENESIS_HASH
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"Line {number} of the export is not JSON ({exc.msg}).") from exc
        if not isinstance(event, dict) or not event.keys() >= _EXPORT_KEYS:
            raise InvalidInput(
                f"Line {number} of the export is not an audit event.",
                hint="Check a file written by `milepost audit export`.",
            )
        checked += 1
        seq = int(event["seq"])
        what = f"{event['action']} on {event['object_type']} {event['object_id']}"
        if event_hash(stored_row(event)) != event["hash"]:
            problems.append(
                AuditProblem(
                    "edited",
                    seq,
                    f"event {seq} ({what}) was changed: its content no longer matches its hash.",
                )
            )
        expected_prev = prev[1] if prev is not None else GENESIS_HASH
        prev_seq = prev[0] if prev is not None else 0
        if seq <= prev_seq:
            problems.append(
                AuditProblem("reordered", seq, f"event {seq} comes after event {prev_seq}.")
            )
        elif seq == prev_seq + 1 and event["prev_hash"] != expected_prev:
            problems.append(
                AuditProblem(
                    "broken_link",
                    seq,
                    f"event {seq} does not follow event {prev_seq}: the link is broken.",
                )
            )
        elif seq > prev_seq + 1 and not partial:
            missing = f"{prev_seq + 1}..{seq - 1}" if seq - prev_seq > 2 else str(prev_seq + 1)
            problems.append(
                AuditProblem(
                    "deleted",
                    prev_seq + 1,
                    f"event(s) {missing} missing (pass partial=True / --partial for a "
                    "filtered export).",
                )
            )
        if (
            expected is not None
            and not found
            and (expected[0] == seq or (expected[0] is None and event["hash"] == expected[1]))
        ):
            found = True
            if event["hash"] != expected[1]:
                problems.append(
                    AuditProblem("anchor", seq, f"event {seq} does not have the expected hash.")
                )
        prev = (seq, event["hash"])
        last_seq, last_hash = seq, event["hash"]
    if not found and expected is not None:
        problems.append(
            AuditProblem("anchor", expected[0] or 0, "the expected head is not in the export.")
        )
    return VerifyReport(checked=checked, head_seq=last_seq, head_hash=last_hash, problems=problems)


def _check_filters(
    object_type: Any,
    object_id: Any,
    actor: Any,
    action: Any,
    since_ms: Any,
    until_ms: Any,
) -> dict[str, Any]:
    for what, value in (
        ("object_type", object_type),
        ("object_id", object_id),
        ("actor", actor),
        ("action", action),
    ):
        check.optional_text(value, what)
    for what, value in (("since_ms", since_ms), ("until_ms", until_ms)):
        if value is not None:
            check.integer(value, what)
    if since_ms is not None and until_ms is not None and until_ms <= since_ms:
        raise InvalidInput(
            f"The time range is empty: until ({until_ms}) is not after since ({since_ms}).",
            hint="Give an until later than since.",
        )
    return {
        "object_type": object_type,
        "object_id": object_id,
        "actor": actor,
        "action": action,
        "since_ms": since_ms,
        "until_ms": until_ms,
    }


def export_to(
    dest: IO[str] | str | Path, write: Callable[[IO[str]], ExportSummary]
) -> ExportSummary:
    """Run ``write`` on ``dest``: an open text stream as it is, a path through a temporary
    file beside it renamed at the end (a failed export leaves no partial file).

    The one place an export's destination is checked, for the embedded service and the
    remote client alike.
    """
    if not isinstance(dest, (str, Path)) and not callable(getattr(dest, "write", None)):
        raise InvalidInput(
            f"Cannot export the audit trail to {check.short_repr(dest)}.",
            hint="Pass a file path or an open text stream (e.g. sys.stdout).",
        )
    if isinstance(dest, (str, Path)):
        target = check.local_path(dest, "The audit export's path")
        if target.is_dir():
            raise InvalidInput(
                f"Cannot export the audit trail to {target}: it is a directory.",
                hint="Name a file, e.g. audit.jsonl.",
            )
        if not target.parent.is_dir():
            raise InvalidInput(
                f"Cannot export the audit trail to {target}: {target.parent} does not exist.",
                hint="Create the directory first, or name a file in an existing one.",
            )
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            with tmp.open("w", encoding="utf-8") as out:
                summary = write(out)
            tmp.replace(target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return summary
    return write(dest)
