"""The audit trail through ``milepost.Client``, embedded and remote: events with
filters and paging, head, verify, export (admin) and checking an export."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

import milepost
from milepost.errors import InvalidInput, PermissionDenied
from tests.shared._registry import remote_runtime


def _events(platform: dict[str, Any], unique: str, n: int) -> None:
    """``n`` audited changes (experiments created), as alice."""
    for i in range(n):
        platform["rt"].tracking.create_experiment(f"{unique}-{i}")


def test_list_filters_and_pages_like_embedded(
    client: milepost.Client, platform: dict[str, Any], runtime: Any, unique: str
) -> None:
    _events(platform, unique, 5)
    rt = platform["rt"]
    embedded = rt.audit.list(object_type="experiment", actor="alice", limit=500)
    got = client.list_audit_events(object_type="experiment", actor="alice", limit=500)
    assert [e.to_dict() for e in got] == [e.to_dict() for e in embedded]
    assert got and all(e.actor == "alice" for e in got)
    newest = client.list_audit_events(limit=3)
    assert [e.seq for e in newest] == sorted((e.seq for e in newest), reverse=True)
    # the next page starts after the last event of this one
    after = runtime.audit.list(limit=2, before_seq=newest[-1].seq)
    assert [e.seq for e in after] == [e.seq for e in rt.audit.list(limit=5)[3:5]]
    assert client.list_audit_events(action="experiment.*", limit=1)[0].action.startswith(
        "experiment."
    )
    with pytest.raises(InvalidInput, match="no filter 'who'"):
        client.list_audit_events(who="alice")
    with pytest.raises(InvalidInput, match="limit"):
        client.list_audit_events(limit=0)


def test_head_and_verify_agree(client: milepost.Client, platform: dict[str, Any]) -> None:
    rt = platform["rt"]
    head = client.audit_head()
    assert head == rt.audit.head_anchor()
    report = client.verify_audit(expect_head=head)
    assert report.ok, report.problems
    assert report.to_dict() == rt.audit.verify(expect_head=head).to_dict()
    tampered = client.verify_audit(expect_head=head.split(":")[0] + ":" + "0" * 64)
    assert not tampered.ok and tampered.problems[0].kind == "anchor"
    with pytest.raises(InvalidInput, match="neither SEQ:HASH nor HASH"):
        client.verify_audit(expect_head="nope")


def test_export_streams_json_lines_and_verifies(
    client: milepost.Client, platform: dict[str, Any], unique: str, tmp_path: Path
) -> None:
    _events(platform, unique, 3)
    path = tmp_path / "audit.jsonl"
    summary = client.export_audit(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert summary.events == len(lines) >= 3 and summary.first_seq == 1
    assert summary.head.startswith(f"{summary.last_seq}:")
    report = client.verify_audit_export(path, expect_head=summary.head)
    assert report.ok and report.checked == len(lines)
    out = io.StringIO()
    part = client.export_audit(out, object_type="experiment", since_ms=0)
    assert part.events == len(out.getvalue().splitlines()) >= 3
    assert part.filters == {"object_type": "experiment", "since_ms": 0}
    assert client.verify_audit_export(io.StringIO(out.getvalue()), partial=True).ok
    with pytest.raises(InvalidInput, match="is a directory"):
        client.export_audit(tmp_path)


def test_export_needs_admin_and_uploads_verify(platform: dict[str, Any], tmp_path: Path) -> None:
    import httpx

    rt = platform["rt"]
    _, viewer = rt.tokens.create("audit-viewer", "viewer", user="vera")
    with remote_runtime(platform, viewer) as remote:
        client = milepost.Client(remote)
        assert client.list_audit_events(limit=1)  # reading the trail is for viewers
        assert client.verify_audit().ok
        with pytest.raises(PermissionDenied, match="admin"):
            client.export_audit(tmp_path / "x.jsonl")
    assert not (tmp_path / "x.jsonl").exists()
    path = tmp_path / "all.jsonl"
    summary = rt.audit.export(path)
    url = f"{platform['url']}/api/v1/audit/verify-export"
    auth = {"Authorization": f"Bearer {viewer}"}
    with httpx.Client(headers=auth) as http:
        ok = http.post(url, content=path.read_bytes(), params={"expect_head": summary.head})
        assert ok.status_code == 200 and ok.json()["ok"] is True
        edited = path.read_text().replace('"actor": "alice"', '"actor": "mallory"', 1)
        bad = http.post(url, content=edited.encode())
        assert bad.status_code == 200 and bad.json()["ok"] is False
        junk = http.post(url, content=b"\xff\xfe not json")
        assert junk.status_code == 400 and junk.json()["code"] == "invalid_input"
