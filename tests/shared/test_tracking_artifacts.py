"""Artifacts through ``milepost.Client``, embedded and remote: the same bytes come back."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import milepost
from milepost.errors import InvalidInput, NotFound
from milepost.tracking import ArtifactInfo


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_upload_download_round_trip(
    client: milepost.Client, runtime: object, unique: str, tmp_path: Path
) -> None:
    tracking = runtime.tracking  # type: ignore[attr-defined]
    run = client.create_run(unique)
    blob = os.urandom(3 * (1 << 20) + 17)  # several chunks, not a multiple of one
    src = tmp_path / "src"
    (src / "nested" / "deeper").mkdir(parents=True)
    (src / "model.bin").write_bytes(blob)
    (src / "nested" / "notes.txt").write_text("héllo\n")
    (src / "nested" / "deeper" / "empty.dat").write_bytes(b"")

    one = tracking.log_artifact(run.run_id, src / "model.bin", "weights")
    assert isinstance(one, ArtifactInfo)
    assert (one.path, one.size) == ("weights/model.bin", len(blob))
    many = tracking.log_artifacts(run.run_id, src / "nested", "docs")
    assert sorted(a.path for a in many) == ["docs/deeper/empty.dat", "docs/notes.txt"]
    tracking.log_bytes(run.run_id, b"\x00\xffraw", "raw/bytes.bin")

    listed = client.list_artifacts(run.run_id)
    assert sorted(a.path for a in listed) == [
        "docs/deeper/empty.dat",
        "docs/notes.txt",
        "raw/bytes.bin",
        "weights/model.bin",
    ]
    assert [a.path for a in client.list_artifacts(run.run_id, "docs")] == [
        "docs/deeper/empty.dat",
        "docs/notes.txt",
    ]
    assert tracking.read_artifact(run.run_id, "weights/model.bin") == blob
    assert tracking.read_artifact(run.run_id, "raw/bytes.bin") == b"\x00\xffraw"
    assert client.load_text(run.run_id, "docs/notes.txt") == "héllo\n"

    out = client.download_artifacts(run.run_id, dst=tmp_path / "all")
    assert out == tmp_path / "all"
    assert _tree(out) == {
        "docs/deeper/empty.dat": b"",
        "docs/notes.txt": "héllo\n".encode(),
        "raw/bytes.bin": b"\x00\xffraw",
        "weights/model.bin": blob,
    }
    part = client.download_artifacts(run.run_id, "docs", tmp_path / "part")
    assert part == tmp_path / "part" / "docs"
    assert sorted(_tree(tmp_path / "part")) == ["docs/deeper/empty.dat", "docs/notes.txt"]
    client.set_terminated(run.run_id)


def test_artifact_errors(client: milepost.Client, unique: str, tmp_path: Path) -> None:
    run = client.create_run(unique)
    with pytest.raises(NotFound, match="no artifact"):
        client.load_text(run.run_id, "missing.txt")
    with pytest.raises(NotFound, match="no artifacts"):
        client.download_artifacts(run.run_id, dst=tmp_path / "x")
    for bad in ("../escape.txt", "/etc/passwd", "a\\b.txt", "nul\x00.txt"):
        with pytest.raises(InvalidInput, match="Refused artifact path"):
            client.load_text(run.run_id, bad)
    client.set_terminated(run.run_id)
