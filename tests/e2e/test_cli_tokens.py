"""`milepost tokens create/list/revoke` as a user types them."""

from __future__ import annotations

import json
from pathlib import Path

import milepost
from milepost.cli.tokens import SHOWN_ONCE
from tests.e2e.test_cli import cli, cli_in_process

ADA = {"MILEPOST_USER": "ada"}


def test_create_prints_the_secret_once_and_it_authenticates(tmp_path: Path) -> None:
    out = cli("tokens", "create", "--name", "ci", "--role", "member", cwd=tmp_path, env=ADA)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("Token ") and "(ci) for ada as member; expires " in lines[0]
    secret = lines[1]
    assert secret.startswith("mp_") and lines[2] == SHOWN_ONCE
    rt = milepost.configure(home=tmp_path / ".milepost")
    principal = rt.tokens.authenticate(secret)
    assert (principal.user, principal.role) == ("ada", "member")
    assert rt.roles.has("ada", "admin")  # the first token made its creator admin
    # the secret is in no later output
    listed = cli_in_process("tokens", "list", cwd=tmp_path, env=ADA)
    assert listed.returncode == 0 and "ci" in listed.stdout and secret not in listed.stdout
    assert secret[len("mp_") + 13 :] not in listed.stdout


def test_options_json_list_and_revoke(tmp_path: Path) -> None:
    made = cli_in_process(
        "tokens", "create", "--name", "bob-ci", "--role", "approver", "--user", "bob",
        "--no-expiry", "--project", "churn", "--json", cwd=tmp_path, env=ADA,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    data = json.loads(made.stdout)
    token = data["token"]
    assert data["secret"].startswith(f"mp_{token['token_id']}_")
    assert (token["user"], token["role"], token["project"], token["expires_at"]) == (
        "bob", "approver", "churn", None,
    )  # fmt: skip
    short = cli_in_process(
        "tokens", "create", "--name", "short", "--expires-in-days", "0.5", "--json",
        cwd=tmp_path, env=ADA,
    )  # fmt: skip
    short_token = json.loads(short.stdout)["token"]
    assert short_token["expires_at"] - short_token["created_at"] == 43_200_000

    revoked = cli_in_process(
        "tokens", "revoke", "bob-ci", "--reason", "left the team", cwd=tmp_path, env=ADA
    )
    assert revoked.returncode == 0, revoked.stderr
    assert f"Token {token['token_id']} (bob-ci) of bob is revoked." in revoked.stdout
    listed = json.loads(cli_in_process("tokens", "list", "--json", cwd=tmp_path, env=ADA).stdout)
    assert [t["name"] for t in listed] == ["short"]
    everything = json.loads(
        cli_in_process("tokens", "list", "--all", "--json", cwd=tmp_path, env=ADA).stdout
    )
    assert {t["name"]: t["state"] for t in everything} == {"short": "active", "bob-ci": "revoked"}
    table = cli_in_process("tokens", "list", "--all", cwd=tmp_path, env=ADA).stdout
    assert "revoked" in table and "never" in table


def test_refusals_are_one_line_errors(tmp_path: Path) -> None:
    cli_in_process("tokens", "create", "--name", "boot", cwd=tmp_path, env=ADA)
    cases = [
        (("tokens", "create", "--name", "x", "--role", "root"), ADA, "role"),
        (
            ("tokens", "create", "--name", "x", "--no-expiry", "--expires-in-days", "3"),
            ADA,
            "contradict",
        ),
        (("tokens", "create", "--name", "x", "--expires-in-days", "0"), ADA, "between 0 and"),
        (("tokens", "create", "--name", "x"), {"MILEPOST_USER": "eve"}, "admin role"),
        (("tokens", "revoke", "nope"), ADA, "No token 'nope'"),
    ]
    for args, env, match in cases:
        out = cli_in_process(*args, cwd=tmp_path, env=env)
        assert out.returncode == 1, (args, out.stdout, out.stderr)
        assert out.stderr.startswith("Error [") and match in out.stderr, (args, out.stderr)
        assert "Traceback" not in out.stderr
    listed = json.loads(cli_in_process("tokens", "list", "--json", cwd=tmp_path, env=ADA).stdout)
    assert [t["name"] for t in listed] == ["boot"]


def test_list_with_no_tokens_says_how_to_make_one(tmp_path: Path) -> None:
    out = cli_in_process("tokens", "list", cwd=tmp_path, env=ADA)
    assert out.returncode == 0
    assert "milepost tokens create --name NAME --role ROLE" in out.stdout


def test_the_same_commands_work_against_a_server(tmp_path: Path) -> None:
    """With MILEPOST_URL and an admin's MILEPOST_TOKEN, over HTTP, as that admin."""
    from tests._server import platform_server

    rt = milepost.Runtime.open(home=str(tmp_path / "server-home"), user="ada")
    _, admin = rt.tokens.create("ada-admin", "admin")
    try:
        with platform_server(rt) as url:
            env = {"MILEPOST_URL": url, "MILEPOST_TOKEN": admin}
            made = cli_in_process(
                "tokens", "create", "--name", "ci", "--user", "ci-bot", "--no-expiry", "--json",
                cwd=tmp_path, env=env,
            )  # fmt: skip
            assert made.returncode == 0, made.stderr
            token = json.loads(made.stdout)["token"]
            assert (token["created_by"], token["user"], token["expires_at"]) == (
                "ada",
                "ci-bot",
                None,
            )
            listed = cli_in_process("tokens", "list", "--json", cwd=tmp_path, env=env)
            assert {t["name"] for t in json.loads(listed.stdout)} == {"ada-admin", "ci"}
            gone = cli_in_process("tokens", "revoke", "ci", cwd=tmp_path, env=env)
            assert gone.returncode == 0 and "is revoked" in gone.stdout, gone.stderr
            ci_env = {"MILEPOST_URL": url, "MILEPOST_TOKEN": json.loads(made.stdout)["secret"]}
            refused = cli_in_process("tokens", "list", cwd=tmp_path, env=ci_env)
            assert refused.returncode == 1 and "revoked" in refused.stderr
    finally:
        rt.close()
    assert not (tmp_path / ".milepost").exists()  # nothing local was opened
