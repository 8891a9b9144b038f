"""Exporting the audit trail as JSON lines, checking an export away from the store, and
the filtered view (by actor, object, action and time range)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from milepost import Client, Runtime
from milepost.errors import InvalidInput, NotFound
from milepost.governance.audit import AuditService


def _history(rt: Runtime) -> Client:
    """Experiments created by two people, one renamed (events with before and after)."""
    c = Client(rt)
    c.create_experiment("by-rt")
    for name in ("a1", "a2"):
        c.create_experiment(name)
    c.rename_experiment("a2", "a2-renamed")
    return c


def test_export_is_the_whole_chain_in_order_and_verifies(runtime: Runtime, tmp_path: Path) -> None:
    c = _history(runtime)
    out = tmp_path / "audit.jsonl"
    summary = c.export_audit(out)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    stored = sorted(c.list_audit_events(limit=1000), key=lambda e: e.seq)
    assert summary.events == len(lines) == len(stored) >= 4
    assert [e["seq"] for e in lines] == [e.seq for e in stored] == list(range(1, len(lines) + 1))
    assert [e["hash"] for e in lines] == [e.hash for e in stored]
    renamed = next(e for e in lines if e["action"] == "experiment.rename")
    assert renamed["before"]["name"] == "a2" and renamed["after"]["name"] == "a2-renamed"
    assert (summary.first_seq, summary.last_seq) == (1, len(lines))
    assert summary.head == c.audit_head()
    report = c.verify_audit_export(out, expect_head=summary.head)
    assert report.ok, report.problems
    assert report.checked == len(lines) and report.head_hash == lines[-1]["hash"]


def test_tampered_export_names_each_problem(runtime: Runtime, tmp_path: Path) -> None:
    c = _history(runtime)
    out = tmp_path / "audit.jsonl"
    c.export_audit(out)
    lines = out.read_text().splitlines()
    edited = json.loads(lines[1])
    edited["actor"] = "mallory"
    (tmp_path / "edited.jsonl").write_text("\n".join([lines[0], json.dumps(edited), *lines[2:]]))
    report = AuditService.verify_export(tmp_path / "edited.jsonl")
    assert [(p.kind, p.seq) for p in report.problems] == [("edited", 2)]

    (tmp_path / "cut.jsonl").write_text("\n".join([lines[0], *lines[2:]]))
    cut = AuditService.verify_export(tmp_path / "cut.jsonl")
    assert [(p.kind, p.seq) for p in cut.problems] == [("deleted", 2)]
    assert "missing" in cut.problems[0].message

    swapped = [lines[0], lines[2], lines[1], *lines[3:]]
    moved = AuditService.verify_export(io.StringIO("\n".join(swapped)))
    assert {p.kind for p in moved.problems} >= {"reordered"}

    wrong_head = AuditService.verify_export(out, expect_head=f"2:{'0' * 64}")
    assert [p.kind for p in wrong_head.problems] == ["anchor"]

    with pytest.raises(InvalidInput, match="Line 2 of the export is not JSON"):
        AuditService.verify_export(io.StringIO(lines[0] + "\n{not json\n"))
    with pytest.raises(InvalidInput, match="not an audit event"):
        AuditService.verify_export(io.StringIO('{"seq": 1}\n'))
    with pytest.raises(NotFound, match="No audit export"):
        AuditService.verify_export(tmp_path / "missing.jsonl")


def test_filtered_view_and_partial_export(runtime: Runtime, tmp_path: Path) -> None:
    c = _history(runtime)
    everything = sorted(c.list_audit_events(limit=1000), key=lambda e: e.seq)
    renames = c.list_audit_events(action="experiment.ren*")
    assert [e.action for e in renames] == ["experiment.rename"]
    middle = everything[len(everything) // 2]
    since = c.list_audit_events(since_ms=middle.time, limit=1000)
    until = c.list_audit_events(until_ms=middle.time, limit=1000)
    # a time range splits the trail: since is inclusive, until exclusive
    assert sorted(e.seq for e in since + until) == [e.seq for e in everything]
    assert all(e.time >= middle.time for e in since) and all(e.time < middle.time for e in until)
    with pytest.raises(InvalidInput, match="The time range is empty"):
        c.list_audit_events(since_ms=middle.time, until_ms=middle.time)
    with pytest.raises(InvalidInput, match=r"has no filter 'actr'.*actor"):
        c.list_audit_events(actr="x")

    out = tmp_path / "renames.jsonl"
    summary = c.export_audit(out, action="experiment.rename")
    assert summary.events == 1 and summary.filters == {"action": "experiment.rename"}
    assert c.verify_audit_export(out, partial=True).ok
    gapped = c.verify_audit_export(out)  # a filtered export does not start at event 1
    assert [p.kind for p in gapped.problems] == ["deleted"]
    with pytest.raises(InvalidInput, match="has no filter 'limit'"):
        c.export_audit(out, limit=3)


def test_export_to_a_bad_place_leaves_nothing(runtime: Runtime, tmp_path: Path) -> None:
    c = Client(runtime)
    c.create_experiment("x")
    with pytest.raises(InvalidInput, match="it is a directory"):
        c.export_audit(tmp_path)
    with pytest.raises(InvalidInput, match="does not exist"):
        c.export_audit(tmp_path / "nope" / "audit.jsonl")
    stream = io.StringIO()
    summary = c.export_audit(stream)
    assert summary.events == len(stream.getvalue().splitlines()) >= 1
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []
