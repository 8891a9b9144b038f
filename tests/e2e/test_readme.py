"""The README runs: every code block, top to bottom, in one new project directory.

The README is a tutorial whose blocks build on each other (a later block reads the
datasets, features and models an earlier one stored), so one test walks them in order,
in a fresh directory with its own ``MILEPOST_HOME``, and handles each block by its kind:

- ``python``: run as a script, a new interpreter per block (so each carries its own
  imports), in the project directory.
- A block whose first line is a path comment (``# features.py``, ``# suites/x.yaml``,
  ``# churn-policy.yaml``, ``# milepost.toml``) is a file: it is written to that path
  before the blocks that use it, and loaded by the parser that reads it (feature
  definitions, an expectation suite, a promotion policy, the settings file; a module
  with a ``@pipeline`` is compiled, and the ``milepost pipelines`` lines import it).
- ``bash``: each line typed as a user would: ``milepost`` is the installed console
  script in a real process; ``milepost endpoints serve`` and ``milepost features serve``
  start in the background (the README says "in a second terminal") and the next line
  runs once the server answers; ``curl`` lines are sent with httpx (see below) and the JSON in the
  comment lines under a ``curl`` line must match the answer.
- ``console``: a transcript; each ``$`` command runs and its output must read as shown
  (a trailing ``...`` stands for the rest of the line).
- ``text``: by section: the filter language (each line parsed by the real parser), the
  layout (every path listed exists, and every subpackage is listed) and a project's
  main-branch CI commands (those of the ``main.yml`` that ``milepost init`` writes).

What the test changes from the README, and why (nothing else is left out):

- The first block (``make demo`` / ``make test``) is not run: those are CI's own
  commands; ``make test`` would run this test inside itself, and the demo has its own
  test (``tests/e2e/test_demo.py``).
- The ports the README's servers listen on (8080, 6566) are replaced by free ports, in
  the server line and the ``curl`` lines that reach it: parallel test runs and other
  programs on the machine may hold the README's ports.
- ``REQ`` in a command is the request id the previous command printed, and ``RUN`` the
  pipeline run id, as the README says a user types them; ``TOKEN`` is the API token the
  last ``milepost tokens create`` printed (shown once, as the README says).
- ``cd DIR`` lines (inside the tutorial's directory) change where the next lines and
  blocks run, and ``export KEY=VALUE`` and ``unset KEY`` lines change the environment of
  the blocks after them, as in the reader's shell (``MILEPOST_URL`` points the next blocks at the
  platform server); ``milepost server`` starts in the background like the other servers.
- ``curl`` lines are parsed and sent with httpx rather than run with curl, so the test
  does not depend on curl being installed; only the options the README uses are known,
  and any other fails the test.
- ``milepost.toml`` is written to a directory of its own: it points at a PostgreSQL
  server and a bucket the reader has and this machine does not.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MILEPOST = str(Path(sys.executable).parent / "milepost")
TIMEOUT = 120  # seconds any one command may take

#: The README's first block: CI's own commands, not run here (see the module docstring).
CI_COMMANDS = ["make demo", "make test"]
_FENCE = re.compile(r"^```([\w-]*)\s*$")
_FILE_COMMENT = re.compile(r"^# ([\w./-]+\.(?:py|ya?ml|toml))$")
_REQUEST_ID = re.compile(r"request\s+([0-9a-f]{12})\b", re.IGNORECASE)
_TOKEN = re.compile(r"\bmp_[0-9a-f]{12}_[A-Za-z0-9_-]{43}\b")
_RUN_ID = re.compile(r"\brun\s+([0-9a-f]{12})(?:[0-9a-f]{20})?\b", re.IGNORECASE)


@dataclass
class Block:
    """A fenced code block of the README."""

    lang: str
    lines: list[str]
    line: int  # README line number of the block's first line of code
    section: str  # the nearest heading above it

    @property
    def text(self) -> str:
        return "\n".join(self.lines) + "\n"

    @property
    def where(self) -> str:
        return f"README.md:{self.line} ({self.section})"

    @property
    def path(self) -> str | None:
        """The file this block is, from its first-line path comment."""
        match = _FILE_COMMENT.match(self.lines[0]) if self.lines else None
        return match.group(1) if match else None


def readme_blocks() -> list[Block]:
    """Every fenced block of the README, in order."""
    blocks: list[Block] = []
    section = ""
    current: Block | None = None
    for number, line in enumerate(README.read_text().splitlines(), start=1):
        fence = _FENCE.match(line)
        if current is not None:
            if line.startswith("```"):
                blocks.append(current)
                current = None
            else:
                current.lines.append(line)
        elif fence:
            current = Block(fence.group(1), [], number + 1, section)
        elif line.startswith("#"):
            section = line.lstrip("#").strip()
    assert current is None, f"README.md: the block opened at line {current.line - 1} never closes"
    return blocks


# -- the project the README's commands run in ----------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Project:
    """The tutorial's directory, its environment and what its commands left behind."""

    root: Path
    env: dict[str, str]
    ports: dict[int, int] = field(default_factory=dict)  # README port -> the real one
    servers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    last_output: str = ""
    last_token: str | None = None  # what the last `milepost tokens create` printed
    where: Path | None = None  # where a `cd` line went (None: the tutorial's root)

    @property
    def cwd(self) -> Path:
        """Where the next command runs: the tutorial's root, or where `cd` went."""
        return self.where or self.root

    @cwd.setter
    def cwd(self, value: Path) -> None:
        self.where = value

    def run(self, argv: list[str], where: str, *, env: dict[str, str] | None = None) -> str:
        """Run a command to its end; it must succeed. Returns its output."""
        done = subprocess.run(
            argv,
            cwd=self.cwd,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        output = done.stdout + done.stderr
        if done.returncode != 0:
            pytest.fail(f"{where}: `{shlex.join(argv)}` exited {done.returncode}:\n{output}")
        self.last_output = output
        return output

    def start_server(self, args: list[str], where: str, *, env: dict[str, str]) -> None:
        """Start ``milepost [features] serve`` or ``milepost server`` in the background;
        return once it answers."""
        assert "--port" in args, f"{where}: a README server line names its port"
        readme_port = int(args[args.index("--port") + 1])
        port = self.ports[readme_port] = _free_port()
        args = [*args]
        args[args.index("--port") + 1] = str(port)
        log_path = self.root.parent / f"server-{port}.log"  # outside the tutorial
        with log_path.open("wb") as log:
            server = subprocess.Popen(
                [MILEPOST, *args],
                cwd=self.cwd,
                env={**self.env, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its replicas too are stopped with its group
            )
        self.servers.append(server)
        probe = {"features": "/health", "server": "/api/v1/health"}.get(args[0], "/ready")
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if server.poll() is not None:
                pytest.fail(f"{where}: the server exited:\n{log_path.read_text()}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}{probe}", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            with contextlib.suppress(subprocess.TimeoutExpired):  # a pause that ends if it exits
                server.wait(timeout=0.1)
        pytest.fail(f"{where}: the server did not answer:\n{log_path.read_text()}")

    def stop_servers(self) -> None:
        for server in self.servers:
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGTERM)  # the group we started, by its id
        for server in self.servers:
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=10)


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    root = tmp_path / "tutorial"
    root.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MILEPOST_")}
    env.update(
        MILEPOST_HOME=str(root / ".milepost"),
        MILEPOST_USER="ada",  # the reader; bob is the approver the README makes
        MPLBACKEND="Agg",  # no window for the README's figure
    )
    proj = Project(root, env)
    try:
        yield proj
    finally:
        proj.stop_servers()


# -- each kind of block ------------------------------------------------------------------


def run_python(block: Block, project: Project) -> None:
    # blank lines first, so a traceback's line numbers are the README's
    code = "\n" * (block.line - 1) + block.text
    project.run([sys.executable, "-c", code], block.where)


def write_file(block: Block, project: Project) -> None:
    """Write a file block to its path and load it with the parser that reads it."""
    assert block.path is not None
    if block.path == "milepost.toml":
        check_settings_file(block, project)
        return
    target = project.root / block.path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(block.text)
    if target.suffix == ".py" and "@pipeline" in block.text:
        # a pipeline module: `milepost pipelines run` imports it from the project directory
        compile(block.text, str(target), "exec")
        return
    if target.suffix == ".py":
        from milepost.features import load_definitions

        defs = load_definitions(target)
        assert defs.views, f"{block.where}: {block.path} defines no feature view"
    elif "checks" in (_yaml(target) or {}):
        from milepost.data import Suite

        suite = Suite.from_yaml(target)
        assert len(suite.checks) == len(_yaml(target)["checks"]), block.where
    else:
        from milepost.promotion import PromotionPolicy

        policy = PromotionPolicy.from_yaml(target)
        assert not policy.empty, f"{block.where}: {block.path} holds no gate"


def _yaml(path: Path) -> dict[str, object] | None:
    import yaml

    data = yaml.safe_load(path.read_text())
    return data if isinstance(data, dict) else None


def check_settings_file(block: Block, project: Project) -> None:
    """Every key of the README's milepost.toml is read from the file, as written."""
    from milepost.config import load_settings

    where = project.root.parent / "settings-example"  # not the tutorial: see the docstring
    where.mkdir()
    (where / "milepost.toml").write_text(block.text)
    resolved = load_settings(env={}, cwd=where)
    for key, value in tomllib.loads(block.text).items():
        assert resolved.sources[key] == "file", f"{block.where}: {key} was not read"
        assert str(getattr(resolved.settings, key)) == str(value), f"{block.where}: {key}"


def run_bash(block: Block, project: Project) -> None:
    lines = block.lines
    for i, line in enumerate(lines):
        words = shlex.split(line, comments=True)
        if not words:
            continue
        where = f"README.md:{block.line + i}"
        env: dict[str, str] = {}
        while "=" in words[0] and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
            key, value = words.pop(0).split("=", 1)
            env[key] = value
        command, args = words[0], words[1:]
        if command == "export":  # the blocks after this one run with it, as in a shell
            for word in args:
                key, _, value = word.partition("=")
                project.env[key] = _substitute(value, where, project)
            continue
        if command == "cd":  # the lines and blocks after it run there, as in a shell
            assert len(args) == 1, f"{where}: cd takes one directory"
            target = (project.cwd / args[0]).resolve()
            assert target.is_dir(), f"{where}: no directory {target}"
            assert target.is_relative_to(project.root), f"{where}: cd leaves the tutorial"
            project.cwd = target
            continue
        if command == "unset":
            for key in args:
                project.env.pop(key, None)
            continue
        env = {k: _substitute(v, where, project) for k, v in env.items()}
        if command == "milepost":
            run_milepost(args, where, project, env=env)
        elif command == "curl":
            answer = [c.removeprefix("#").strip() for c in _comments_after(lines, i)]
            run_curl(args, where, project, documented=" ".join(answer))
        else:
            pytest.fail(f"{where}: the test does not know how to run {command!r}")


def _comments_after(lines: list[str], i: int) -> list[str]:
    comments = []
    for line in lines[i + 1 :]:
        if not line.startswith("#"):
            break
        comments.append(line)
    return comments


def _substitute(value: str, where: str, project: Project) -> str:
    """``TOKEN`` -> the token printed last; a README server's URL -> where it really runs."""
    if "TOKEN" in value:
        assert project.last_token, f"{where}: no `milepost tokens create` printed a token before"
        value = value.replace("TOKEN", project.last_token)
    for readme_port, port in project.ports.items():
        value = value.replace(f"127.0.0.1:{readme_port}", f"127.0.0.1:{port}")
    return value


def run_milepost(args: list[str], where: str, project: Project, *, env: dict[str, str]) -> None:
    if args[:2] in (["endpoints", "serve"], ["features", "serve"]) or args[:1] == ["server"]:
        project.start_server(args, where, env=env)
        return
    args = [_substitute(a, where, project) if "TOKEN" in a else a for a in args]
    if "REQ" in args:  # the request id the previous command printed (a user copies it)
        found = _REQUEST_ID.search(project.last_output)
        assert found, f"{where}: no request id in the output before:\n{project.last_output}"
        args = [found.group(1) if a == "REQ" else a for a in args]
    if "RUN" in args:  # the pipeline run id the previous command printed
        found = _RUN_ID.search(project.last_output)
        assert found, f"{where}: no run id in the output before:\n{project.last_output}"
        args = [found.group(1) if a == "RUN" else a for a in args]
    project.run([MILEPOST, *args], where, env=env)
    if args[:2] == ["tokens", "create"]:
        found = _TOKEN.search(project.last_output)
        assert found, f"{where}: no token in the output:\n{project.last_output}"
        project.last_token = found.group(0)


def run_curl(args: list[str], where: str, project: Project, *, documented: str) -> None:
    """Send what the curl command sends (only the options the README uses are known)."""
    method, body, headers, url = "GET", None, {}, None
    words = iter(args)
    for word in words:
        if word in ("-s", "--silent"):
            continue
        if word in ("-d", "--data"):
            method, body = "POST", next(words)
        elif word in ("-H", "--header"):
            key, _, value = next(words).partition(":")
            # "$MILEPOST_TOKEN" expands as the reader's shell would
            value = re.sub(r"\$(\w+)", lambda m: project.env.get(m.group(1), ""), value)
            headers[key.strip()] = value.strip()
        elif word in ("-X", "--request"):
            method = next(words)
        elif word.startswith("-"):
            pytest.fail(f"{where}: curl option {word} is not known to this test; add it")
        else:
            url = word
    assert url is not None, f"{where}: curl without a URL"
    host, _, rest = url.removeprefix("http://").partition("/")
    readme_port = int(host.rpartition(":")[2]) if ":" in host else 80
    assert readme_port in project.ports, f"{where}: no README server listens on {host}"
    real = f"http://127.0.0.1:{project.ports[readme_port]}/{rest}"
    reply = httpx.request(method, real, content=body, headers=headers, timeout=30)
    assert reply.status_code == 200, f"{where}: {reply.status_code} {reply.text}"
    if documented:
        mismatches = list(_differences(json.loads(documented), reply.json(), "answer"))
        assert not mismatches, f"{where}: the answer is {reply.text}; " + "; ".join(mismatches)


def _differences(doc: object, got: object, at: str) -> Iterator[str]:
    """How an answer differs from the README's: ``"…"`` stands for any value, and a
    number matches to the decimals the README shows."""
    if doc == "…":
        return
    if isinstance(doc, dict):
        if not isinstance(got, dict) or set(doc) != set(got):
            yield f"{at} has keys {sorted(got) if isinstance(got, dict) else got}"
            return
        for key in doc:
            yield from _differences(doc[key], got[key], f"{at}.{key}")
    elif isinstance(doc, list):
        if not isinstance(got, list) or len(doc) != len(got):
            yield f"{at} is {got}"
            return
        for n, (d, g) in enumerate(zip(doc, got, strict=True)):
            yield from _differences(d, g, f"{at}[{n}]")
    elif isinstance(doc, float):
        decimals = len(repr(doc).partition(".")[2])
        if not isinstance(got, (int, float)) or abs(got - doc) > 0.5 * 10**-decimals + 1e-9:
            yield f"{at} is {got}, not {doc}"
    elif doc != got or type(doc) is not type(got):
        yield f"{at} is {got!r}, not {doc!r}"


def run_transcript(block: Block, project: Project) -> None:
    """``$ command`` then its output as the README shows it."""
    steps: list[tuple[int, str, list[str]]] = []
    for i, line in enumerate(block.lines):
        if line.startswith("$ "):
            steps.append((block.line + i, line[2:], []))
        else:
            assert steps, f"{block.where}: output before any command"
            steps[-1][2].append(line)
    for number, command, shown in steps:
        words = shlex.split(command)
        assert words[0] == "milepost", f"README.md:{number}: not a milepost command"
        done = subprocess.run(
            [MILEPOST, *words[1:]],
            cwd=project.cwd,
            env=project.env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        got = " ".join((done.stdout + done.stderr).split())
        expected = " ".join(" ".join(shown).split())
        if expected.endswith("..."):
            assert got.startswith(expected[:-3].rstrip()), f"README.md:{number}: printed {got!r}"
        else:
            assert got == expected, f"README.md:{number}: printed {got!r}"
        if expected.startswith("Error ["):
            assert done.returncode == 1, f"README.md:{number}: exited {done.returncode}"


def check_filters(block: Block) -> None:
    from milepost.tracking._filter import parse_filter

    for i, line in enumerate(block.lines):
        if line.strip():
            assert parse_filter(line), f"README.md:{block.line + i}: {line!r} parsed to nothing"


def check_layout(block: Block) -> None:
    """Every path the layout lists exists; every subpackage of milepost is listed."""
    listed = set()
    for line in block.lines:
        names = line.strip().split("  ")[0].split()  # the left column, before the gap
        base = ROOT / "src/milepost" if line.startswith(" ") else ROOT
        for name in names:
            assert (base / name).exists(), f"{block.where}: {name} is not in the repository"
            listed.add(name.rstrip("/"))
    packages = {p.parent.name for p in (ROOT / "src/milepost").glob("*/__init__.py")}
    assert packages <= listed, f"{block.where}: not listed: {sorted(packages - listed)}"


def check_release_commands(block: Block) -> None:
    """The main-branch commands the README lists are those of the main.yml `milepost
    init churn-project` writes, in order (tests/e2e/test_project_ci.py runs them)."""
    import tempfile

    import yaml

    from milepost.project.scaffold import scaffold

    listed = [line.split("#")[0].strip() for line in block.lines if line.split("#")[0].strip()]
    with tempfile.TemporaryDirectory() as tmp:
        scaffold(Path(tmp) / "churn-project")
        workflow = Path(tmp) / "churn-project/.github/workflows/main.yml"
        steps = yaml.safe_load(workflow.read_text())["jobs"]["release"]["steps"]
    assert listed == [step["run"] for step in steps if "run" in step], block.where


TEXT_BLOCKS = {
    "The filter language": check_filters,
    "Layout": check_layout,
    "Your own project: `milepost init`, checks and CI/CD": check_release_commands,
}


# -- the test -----------------------------------------------------------------------------


def test_every_block_is_handled() -> None:
    """A block nobody runs or checks would rot: each kind must be one the test knows."""
    blocks = readme_blocks()
    commands = [line.split("#")[0].strip() for line in blocks[0].lines]
    assert commands == CI_COMMANDS, "the README's first block changed: update CI_COMMANDS"
    for block in blocks[1:]:
        if block.lang == "text":
            assert block.section in TEXT_BLOCKS, f"{block.where}: no check for this text block"
        elif block.lang in ("yaml", "toml"):
            assert block.path, f"{block.where}: a {block.lang} block starts with its path"
        else:
            assert block.lang in ("python", "bash", "console"), f"{block.where}: {block.lang!r}"


def test_the_readme_runs_top_to_bottom(project: Project) -> None:
    for block in readme_blocks()[1:]:  # [0]: CI's own commands (see the module docstring)
        if block.path:
            write_file(block, project)
        elif block.lang == "python":
            run_python(block, project)
        elif block.lang == "bash":
            run_bash(block, project)
        elif block.lang == "console":
            run_transcript(block, project)
        elif block.lang == "text":
            TEXT_BLOCKS[block.section](block)
        else:
            pytest.fail(f"{block.where}: no way to run a {block.lang!r} block")
