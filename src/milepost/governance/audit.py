"""Reading and verifying the audit trail.

``verify`` walks the whole chain once and names each problem it finds:

- **edited**: an event's content no longer matches its hash;
- **deleted**: a gap in the sequence numbers, or fewer events than the head records;
- **reordered**: an event sits at another position than the one it was written at;
- **broken link**: an event does not follow the one before it (its ``prev_hash``);
- **anchor**: a ``seq:hash`` recorded earlier (``milepost audit head``) no longer
  matches, which catches an attacker who rewrote the chain and recomputed every hash.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from milepost.errors import InvalidInput
from milepost.stores.audit import (
    GENESIS_HASH,
    AuditEvent,
    event_hash,
    iter_rows,
    query_events,
    read_head,
)

if TYPE_CHECKING:
    from milepost.stores.metadata import MetadataStore

__all__ = ["AuditProblem", "AuditService", "VerifyReport"]

ProblemKind = Literal["edited", "deleted", "reordered", "broken_link", "anchor"]


@dataclass(frozen=True)
class AuditProblem:
    """One finding of :meth:`AuditService.verify`."""

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
        limit: int = 100,
    ) -> list[AuditEvent]:
        """Events, newest first, filtered by any of the arguments.

        ``action`` accepts ``*`` as a wildcard (``run.*``).
        """
        if limit <= 0:
            raise InvalidInput(f"limit must be positive, got {limit}.")
        with self._store.read() as conn:
            return query_events(
                conn,
                object_type=object_type,
                object_id=object_id,
                actor=actor,
                action=action,
                since_ms=since_ms,
                limit=limit,
            )

    def head(self) -> tuple[int, str]:
        """The newest event's ``(seq, hash)``: record it elsewhere as an anchor."""
        with self._store.read() as conn:
            return read_head(conn)

    def verify(self, *, anchor: str | None = None) -> VerifyReport:
        """Walk the whole chain and report every problem found.

        Args:
            anchor: ``"SEQ:HASH"`` printed earlier by :meth:`head`; the event at SEQ must
                still have that hash.
        """
        anchor_seq, anchor_hash = _parse_anchor(anchor) if anchor else (None, None)
        problems: list[AuditProblem] = []
        expected_seq = 1
        prev_hash = GENESIS_HASH
        checked = 0
        anchor_seen = False
        prev_flagged = False
        with self._store.read() as conn:
            head_seq, head_hash = read_head(conn)
            for row in iter_rows(conn):
                checked += 1
                seq = int(row["seq"])
                if seq > expected_seq:
                    missing = (
                        f"event {expected_seq}"
                        if seq - expected_seq == 1
                        else f"events {expected_seq}..{seq - 1}"
                    )
                    problems.append(
                        AuditProblem(
                            "deleted", expected_seq, f"{missing} deleted (gap before {seq})."
                        )
                    )
                problems_before = len(problems)
                recomputed = event_hash(row)
                if recomputed != row["hash"]:
                    origin = _written_at(row, seq)
                    if origin is not None:
                        problems.append(
                            AuditProblem(
                                "reordered",
                                seq,
                                f"event {seq} was written as event {origin} and moved "
                                f"({row['action']} on {row['object_type']} {row['object_id']}).",
                            )
                        )
                    else:
                        problems.append(
                            AuditProblem(
                                "edited",
                                seq,
                                f"event {seq} ({row['action']} on {row['object_type']} "
                                f"{row['object_id']}) was changed after it was written: "
                                "its content no longer matches its hash.",
                            )
                        )
                elif row["prev_hash"] != prev_hash and seq == expected_seq and not prev_flagged:
                    # (a link broken by a neighbour already reported is not news)
                    problems.append(
                        AuditProblem(
                            "broken_link",
                            seq,
                            f"event {seq} does not follow event {seq - 1}: the chain link "
                            "between them is broken.",
                        )
                    )
                if anchor_seq == seq:
                    anchor_seen = True
                    if row["hash"] != anchor_hash:
                        problems.append(
                            AuditProblem(
                                "anchor",
                                seq,
                                f"event {seq} has hash {row['hash'][:12]}..., but the anchor "
                                f"says {anchor_hash[:12] if anchor_hash else ''}...: the chain "
                                "was rewritten.",
                            )
                        )
                prev_hash = row["hash"]
                prev_flagged = len(problems) > problems_before
                expected_seq = seq + 1
        last_seq = expected_seq - 1
        if head_seq > last_seq:
            missing = (
                f"event {head_seq}"
                if head_seq == last_seq + 1
                else f"events {last_seq + 1}..{head_seq}"
            )
            problems.append(
                AuditProblem(
                    "deleted",
                    last_seq + 1,
                    f"{missing} deleted: the head records {head_seq} events.",
                )
            )
        elif head_seq == last_seq and head_seq > 0 and head_hash != prev_hash:
            problems.append(
                AuditProblem(
                    "edited", head_seq, f"event {head_seq} does not match the head's hash."
                )
            )
        if anchor_seq is not None and not anchor_seen:
            problems.append(
                AuditProblem("anchor", anchor_seq, f"anchored event {anchor_seq} is missing.")
            )
        return VerifyReport(
            checked=checked, head_seq=head_seq, head_hash=head_hash, problems=problems
        )


_MOVE_WINDOW = 1000


def _written_at(row: dict[str, object], seq: int) -> int | None:
    """The position an event was written at, when it matches its hash there."""
    for delta in range(1, _MOVE_WINDOW + 1):
        for candidate in (seq - delta, seq + delta):
            if candidate > 0 and event_hash(row, seq=candidate) == row["hash"]:
                return candidate
    return None


def _parse_anchor(anchor: str) -> tuple[int, str]:
    seq_text, sep, digest = anchor.partition(":")
    if not sep or not seq_text.isdigit() or len(digest) != 64:
        raise InvalidInput(
            f"Anchor {anchor!r} is not SEQ:HASH.",
            hint="Use the value printed by `milepost audit head`.",
        )
    return int(seq_text), digest
