"""`milepost server` as a user starts it: secure by default, --no-auth only on loopback."""

from __future__ import annotations

import os
import re
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

import milepost
from milepost.cli.server import is_loopback
from tests._wait import wait_until
from tests.e2e.test_cli import MILEPOST, cli

ADA = {"MILEPOST_USER": "ada"}


class Served:
    """A running `milepost server` process and everything it has printed so far."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.out: list[str] = []
        self.err: list[str] = []
        self._threads = [
            threading.Thread(target=self._pump, args=(proc.stdout, self.out), daemon=True),
            threading.Thread(target=self._pump, args=(proc.stderr, self.err), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    @staticmethod
    def _pump(stream: object, lines: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            lines.append(line)

    def url(self) -> str:
        def found() -> str | None:
            for line in self.out:
                match = re.match(r"Milepost server on (http://\S+) ", line)
                if match:
                    return match.group(1)
            return None

        return wait_until(
            found,
            what="the server to print its URL",
            timeout=60,
            detail=lambda: "".join(self.out + self.err),
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)
        for thread in self._threads:
            thread.join(10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@contextmanager
def serving(*args: str, cwd: Path, env: dict[str, str]) -> Iterator[Served]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MILEPOST_")}
    full_env.update(env, COLUMNS="200")
    proc = subprocess.Popen(
        [MILEPOST, "server", "--port", "0", *args],
        cwd=cwd,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    served = Served(proc)
    try:
        yield served
    finally:
        served.stop()


def test_serves_the_api_with_tokens_and_logs_paths_not_secrets(tmp_path: Path) -> None:
    rt = milepost.configure(home=tmp_path / ".milepost", user="ada")
    _, secret = rt.tokens.create("ada-laptop", "admin")
    milepost.reset()
    with serving(cwd=tmp_path, env=ADA) as served:
        url = served.url()
        assert any(line.strip() == f"Web UI: {url}/" for line in served.out)
        with httpx.Client(base_url=url, timeout=30) as http:
            assert http.get("/api/v1/health").json() == {"status": "ok"}
            assert http.get("/api/v1/whoami").status_code == 401
            me = http.get("/api/v1/whoami", headers={"Authorization": f"Bearer {secret}"})
            assert me.json()["user"] == "ada" and me.json()["role"] == "admin"
            assert http.get("/api/v1/openapi.json").status_code == 200  # the schema is public
        wait_until(
            lambda: any("/api/v1/whoami" in line for line in served.out + served.err),
            what="the access log line",
            detail=lambda: "".join(served.out + served.err),
        )
        served.stop()
    printed = "".join(served.out + served.err)
    assert secret not in printed and secret[len("mp_") + 13 :] not in printed
    assert "No API tokens yet" not in printed


def test_with_no_token_yet_it_says_how_to_make_one(tmp_path: Path) -> None:
    with serving(cwd=tmp_path, env=ADA) as served:
        url = served.url()
        wait_until(
            lambda: any("No API tokens yet" in line for line in served.err),
            what="the hint about tokens",
            detail=lambda: "".join(served.err),
        )
        assert httpx.get(f"{url}/api/v1/whoami", timeout=30).status_code == 401
    assert "milepost tokens create --name admin --role admin" in "".join(served.err)


def test_no_auth_on_loopback_acts_as_the_servers_user(tmp_path: Path) -> None:
    with serving("--no-auth", cwd=tmp_path, env=ADA) as served:
        url = served.url()
        me = httpx.get(f"{url}/api/v1/whoami", timeout=30).json()
        assert (me["user"], me["role"]) == ("ada", "admin")
        assert any("Authentication is off" in line for line in served.err)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1", "milepost.example"])  # noqa: S104
def test_no_auth_is_refused_off_loopback(tmp_path: Path, host: str) -> None:
    out = cli("server", "--host", host, "--port", "0", "--no-auth", cwd=tmp_path, env=ADA)
    assert out.returncode == 1, (out.stdout, out.stderr)
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error [invalid_input]: --no-auth is refused")
    assert "Milepost server on" not in out.stdout


def test_a_client_process_is_not_a_server(tmp_path: Path) -> None:
    env = {**ADA, "MILEPOST_URL": "http://127.0.0.1:9"}
    out = cli("server", "--port", "0", cwd=tmp_path, env=env)
    assert out.returncode == 1 and "MILEPOST_URL is set" in out.stderr
    assert "Milepost server on" not in out.stdout


def test_loopback_names() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.8.9.1", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.1", "example.org"))  # noqa: S104


def test_worker_processes_share_the_port_and_keep_authentication(tmp_path: Path) -> None:
    rt = milepost.configure(home=tmp_path / ".milepost", user="ada")
    _, secret = rt.tokens.create("ada-laptop", "member")
    milepost.reset()
    # an inherited switch for the workers' no-auth mode must not turn authentication off
    inherited = {**ADA, "_MILEPOST_SERVER_NO_AUTH": "1"}
    with serving("--workers", "2", cwd=tmp_path, env=inherited) as served:
        url = served.url()

        def answers() -> bool:
            try:
                return httpx.get(f"{url}/api/v1/health", timeout=5).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(answers, what="a worker to answer", detail=lambda: "".join(served.err))
        with httpx.Client(base_url=url, timeout=30) as http:
            for _ in range(4):
                assert http.get("/api/v1/whoami").status_code == 401
                me = http.get("/api/v1/whoami", headers={"Authorization": f"Bearer {secret}"})
                assert me.json()["user"] == "ada"
