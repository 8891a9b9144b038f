"""The `milepost` command as a user types it, on a real SQLite file.

The console script's own behaviour (settings from the environment, one-line errors) is
checked in real processes (:func:`cli`); what a command does, in-process
(:func:`cli_in_process`: the same parse, stores and output, without a start each time).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

MILEPOST = str(Path(sys.executable).parent / "milepost")


def cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MILEPOST_")}
    full_env.update(env or {}, COLUMNS="200")
    return subprocess.run(
        [MILEPOST, *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def cli_in_process(
    *args: str, cwd: Path, env: dict[str, str] | None = None, columns: int = 200
) -> subprocess.CompletedProcess[str]:
    """:func:`cli` without starting a process: the same parser, settings, stores, output
    and exit code, in ~1/20 of the time.

    For tests of what a command does. The console script itself (a real process, its
    start, its exit code) keeps :func:`cli`. Like a new process, each call resolves the
    settings from ``cwd`` and ``env`` (no ``MILEPOST_*`` from outside) and closes the
    runtime afterwards, so pending writes are flushed before the next call reads.
    ``columns`` is the terminal's width (``COLUMNS``).
    """
    import milepost
    from milepost.cli import main
    from milepost.cli._output import console, err_console

    saved_env, saved_cwd = dict(os.environ), Path.cwd()
    saved_widths = [c._width for c in (console, err_console)]
    out, err = io.StringIO(), io.StringIO()
    for key in [k for k in os.environ if k.startswith("MILEPOST_")]:
        del os.environ[key]
    os.environ.update(env or {}, COLUMNS=str(columns))
    for c in (console, err_console):
        c.width = columns
    os.chdir(cwd)
    milepost.reset()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(list(args))
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
            milepost.reset()  # as at a process's exit: flush, release the database
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        for c, width in zip((console, err_console), saved_widths, strict=True):
            c._width = width
    return subprocess.CompletedProcess([MILEPOST, *args], code, out.getvalue(), err.getvalue())


TRAIN = (
    "import milepost\n"
    "for i, model in enumerate(['gbm', 'lr']):\n"
    "    with milepost.start_run(experiment='cli', run_name=model):\n"
    "        milepost.log_params({'model': model})\n"
    "        milepost.log_metric('acc', 0.8 + i / 10)\n"
    "        milepost.log_text('hi', 'notes/readme.txt')\n"
)


def _train(home: Path) -> Path:
    """Two finished runs in ``home``, logged by a script run as a user runs it."""
    script = home / "train.py"
    script.write_text(TRAIN)
    subprocess.run(
        [sys.executable, str(script)],
        cwd=home,
        check=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("MILEPOST_")},
    )
    return home


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A home of its own, for a test that changes it."""
    return _train(tmp_path)


@pytest.fixture(scope="module")
def shared_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One home for the tests that only read it (they may write files beside it)."""
    return _train(tmp_path_factory.mktemp("project"))


def test_info_shows_settings_and_sources(tmp_path: Path) -> None:
    (tmp_path / "milepost.toml").write_text('experiment = "from-file"\n')
    out = cli("info", "--json", cwd=tmp_path, env={"MILEPOST_USER": "ada"})
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["actor"] == "ada"
    assert data["settings"]["user"] == {"value": "ada", "source": "env"}
    assert data["settings"]["experiment"] == {"value": "from-file", "source": "file"}
    assert data["backends"]["metadata"]["dialect"] == "sqlite"
    assert data["backends"]["metadata"]["schema_revision"]
    human = cli("info", cwd=tmp_path)
    assert "MILEPOST_" not in human.stdout or "env" in human.stdout
    assert "milepost.toml" in human.stdout


def test_info_never_shows_the_serving_token(tmp_path: Path) -> None:
    env = {"MILEPOST_SERVING_TOKEN": "do-not-print-me-1234"}
    for args in (("info", "--json"), ("info",)):
        out = cli_in_process(*args, cwd=tmp_path, env=env)
        assert out.returncode == 0, out.stderr
        assert "do-not-print-me" not in out.stdout + out.stderr
    data = json.loads(cli_in_process("info", "--json", cwd=tmp_path, env=env).stdout)
    assert data["settings"]["serving_token"] == {"value": "**********", "source": "env"}


def test_experiments_commands(tmp_path: Path) -> None:
    assert (
        cli_in_process(
            "experiments", "create", "churn", "--description", "d", cwd=tmp_path
        ).returncode
        == 0
    )
    assert cli_in_process("experiments", "rename", "churn", "churn2", cwd=tmp_path).returncode == 0
    listed = json.loads(cli_in_process("experiments", "list", "--json", cwd=tmp_path).stdout)
    assert [e["name"] for e in listed] == ["churn2"]
    assert (
        cli_in_process(
            "experiments", "delete", "churn2", "--reason", "old", cwd=tmp_path
        ).returncode
        == 0
    )
    assert json.loads(cli_in_process("experiments", "list", "--json", cwd=tmp_path).stdout) == []
    assert cli_in_process("experiments", "restore", "churn2", cwd=tmp_path).returncode == 0


def test_runs_list_show_compare(shared_project: Path) -> None:
    out = cli_in_process(
        "runs", "list", "-e", "cli", "-f", "metrics.acc > 0.85", "--json", cwd=shared_project
    )
    assert out.returncode == 0, out.stderr
    runs = json.loads(out.stdout)["runs"]
    assert [r["name"] for r in runs] == ["lr"]
    ordered = json.loads(
        cli_in_process("runs", "list", "-o", "metrics.acc ASC", "--json", cwd=shared_project).stdout
    )
    assert [r["name"] for r in ordered["runs"]] == ["gbm", "lr"]
    table = cli_in_process("runs", "list", "-e", "cli", cwd=shared_project)
    assert "gbm" in table.stdout and "acc" in table.stdout
    run_id = runs[0]["run_id"]
    shown = json.loads(
        cli_in_process("runs", "show", run_id[:12], "--json", cwd=shared_project).stdout
    )
    assert shown["params"] == {"model": "lr"}
    assert shown["artifacts"][0]["path"] == "notes/readme.txt"
    assert shown["environment"]["python_version"]
    text = cli_in_process("runs", "show", run_id, cwd=shared_project).stdout
    assert "notes/readme.txt" in text and "FINISHED" in text
    ids = [r["run_id"] for r in ordered["runs"]]
    cmp = json.loads(cli_in_process("runs", "compare", *ids, "--json", cwd=shared_project).stdout)
    assert cmp["rows"]["params.model"] == ["gbm", "lr"]
    assert "metrics.acc" in cli_in_process("runs", "compare", *ids, cwd=shared_project).stdout
    dl = cli_in_process(
        "runs", "download", run_id, "--dst", str(shared_project / "dl"), cwd=shared_project
    )
    assert (
        dl.returncode == 0 and (shared_project / "dl" / "notes" / "readme.txt").read_text() == "hi"
    )


def test_known_errors_are_one_line_without_traceback(shared_project: Path) -> None:
    out = cli("runs", "list", "-f", "metrics.acc >> 1", cwd=shared_project)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert lines[0].startswith("Error [invalid_filter]: Invalid filter at character 14")
    missing = cli("runs", "show", "f" * 32, cwd=shared_project)
    assert missing.returncode == 1 and "milepost runs list" in missing.stderr
    bad_cfg = cli("info", cwd=shared_project, env={"MILEPOST_METRIC_BATCH_SIZE": "x"})
    assert bad_cfg.returncode == 1 and "MILEPOST_METRIC_BATCH_SIZE" in bad_cfg.stderr


def test_audit_export_verify_export_and_time_filters(project: Path) -> None:
    out = project / "audit.jsonl"
    done = cli_in_process("audit", "export", "--out", str(out), cwd=project)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert f"Exported {len(events)} event(s) (seq 1..{len(events)})" in done.stderr
    checked = cli_in_process("audit", "verify-export", str(out), cwd=project)
    assert checked.returncode == 0 and f"OK: {len(events)} exported events" in checked.stdout
    runs = cli_in_process("audit", "export", "--action", "run.*", "--since", "1h", cwd=project)
    lines = runs.stdout.splitlines()
    assert lines and all(json.loads(line)["action"].startswith("run.") for line in lines)
    (project / "runs.jsonl").write_text(runs.stdout)
    gaps = cli_in_process("audit", "verify-export", str(project / "runs.jsonl"), cwd=project)
    assert gaps.returncode == 1 and "[deleted]" in gaps.stdout
    assert (
        cli_in_process(
            "audit", "verify-export", "--partial", str(project / "runs.jsonl"), cwd=project
        ).returncode
        == 0
    )
    future = cli_in_process("audit", "list", "--json", "--since", "2999-01-01", cwd=project)
    assert json.loads(future.stdout) == []
    old = cli_in_process("audit", "list", "--json", "--until", "2000-01-01T00:00", cwd=project)
    assert json.loads(old.stdout) == []
    bad = cli_in_process("audit", "list", "--since", "yesterday", cwd=project)
    assert bad.returncode == 2 and "is not a time" in bad.stderr


def test_audit_list_verify_head(project: Path) -> None:
    listed = json.loads(cli_in_process("audit", "list", "--json", cwd=project).stdout)
    assert listed[0]["action"] == "run.end" and listed[-1]["action"] == "experiment.create"
    assert cli_in_process("audit", "list", "--action", "run.*", cwd=project).returncode == 0
    head = cli_in_process("audit", "head", cwd=project).stdout.strip()
    ok = cli_in_process("audit", "verify", "--anchor", head, cwd=project)
    assert ok.returncode == 0 and "OK" in ok.stdout
    import sqlite3

    db = sqlite3.connect(project / ".milepost" / "milepost.db")
    db.execute("DROP TRIGGER audit_events_no_update")
    db.execute("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2")
    db.commit()
    db.close()
    bad = cli_in_process("audit", "verify", "--json", cwd=project)
    assert bad.returncode == 1
    report = json.loads(bad.stdout)
    assert report["ok"] is False and report["problems"][0]["seq"] == 2
    assert "TAMPERED" in cli_in_process("audit", "verify", cwd=project).stdout


def test_db_upgrade_and_current(tmp_path: Path) -> None:
    out = cli_in_process("db", "upgrade", cwd=tmp_path)
    from milepost.stores.metadata import MetadataStore

    head = MetadataStore("sqlite://").head_revision()
    assert out.returncode == 0 and f"revision {head}" in out.stdout
    assert (
        f"database {head} · newest {head}" in cli_in_process("db", "current", cwd=tmp_path).stdout
    )


def test_audit_head_and_expect_head(shared_project: Path) -> None:
    head = cli_in_process("audit", "head", cwd=shared_project)
    assert head.returncode == 0, head.stderr
    anchor = head.stdout.strip()
    seq, digest = anchor.split(":")
    assert int(seq) > 0 and len(digest) == 64
    as_json = json.loads(cli_in_process("audit", "head", "--json", cwd=shared_project).stdout)
    assert as_json == {"seq": int(seq), "hash": digest, "anchor": anchor}
    for value in (anchor, digest):
        ok = cli_in_process("audit", "verify", "--expect-head", value, cwd=shared_project)
        assert ok.returncode == 0 and "OK" in ok.stdout, ok.stdout + ok.stderr
    wrong = cli_in_process(
        "audit", "verify", "--expect-head", f"{seq}:{'a' * 64}", cwd=shared_project
    )
    assert wrong.returncode == 1 and "[anchor]" in wrong.stdout
    bad = cli_in_process("audit", "verify", "--expect-head", "nonsense", cwd=shared_project)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr and "HASH" in bad.stderr


def test_info_says_embedded_mode_has_no_authentication(tmp_path: Path) -> None:
    human = cli_in_process("info", cwd=tmp_path)
    assert human.returncode == 0, human.stderr
    text = " ".join(human.stdout.split())
    assert "Embedded mode has no authentication" in text
    assert "MILEPOST_USER" in text
    data = json.loads(cli_in_process("info", "--json", cwd=tmp_path).stdout)
    assert data["authentication"].startswith("none")


def test_roles_refuse_to_revoke_the_last_admin(tmp_path: Path) -> None:
    env = {"MILEPOST_USER": "alice"}
    first = cli_in_process("roles", "grant", "bob", "approver", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    grants = json.loads(cli_in_process("roles", "list", "--json", cwd=tmp_path, env=env).stdout)
    assert {(g["user"], g["role"]) for g in grants} == {("alice", "admin"), ("bob", "approver")}
    out = cli_in_process("roles", "revoke", "alice", "admin", cwd=tmp_path, env=env)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "last admin" in out.stderr and "milepost roles grant USER admin" in out.stderr
