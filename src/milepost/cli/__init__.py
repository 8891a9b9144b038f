"""The ``milepost`` command: parse, call a service, render. No business logic here.

Starting it is cheap: command modules import Typer, Rich and :mod:`milepost.errors`
only, and each command imports the services it calls (see :mod:`milepost.cli._runtime`),
so ``milepost --help`` never loads the services, pandas, DuckDB or SQLAlchemy; a
command builds only its own branch of the command tree, and the runtime builds only the
services the command uses.

Known errors (:class:`~milepost.errors.MilepostError`) print as one line with what to
do and exit 1; usage errors (unknown option, missing argument, bad value) print as one
line with where to find help and exit 2; anything else is a bug and prints its traceback.
"""

from __future__ import annotations

import copy
import functools
import sys
import traceback
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.main
from rich.markup import escape

from milepost.cli import (
    audit,
    check,
    data,
    decisions,
    deploy,
    drift,
    endpoints,
    experiments,
    fairness,
    features,
    init,
    lineage,
    models,
    monitor,
    pipelines,
    promotions,
    roles,
    runs,
    scheduler,
    server,
    system,
    tokens,
    triggers,
)
from milepost.cli._help import polish
from milepost.cli._output import err_console
from milepost.errors import MilepostError

app = typer.Typer(
    name="milepost",
    help="Milepost: track, version, gate, deploy and monitor ML models in one system.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command()(system.info)
app.add_typer(system.db_app, name="db")
app.add_typer(experiments.app, name="experiments")
app.add_typer(runs.app, name="runs")
app.add_typer(data.app, name="data")
app.add_typer(features.app, name="features")
app.add_typer(models.app, name="models")
app.add_typer(promotions.app, name="promotions")
app.add_typer(fairness.app, name="fairness")
app.add_typer(endpoints.app, name="endpoints")
app.add_typer(decisions.app, name="decisions")
app.add_typer(monitor.app, name="monitor")
app.add_typer(pipelines.app, name="pipelines")
app.add_typer(deploy.app, name="deploy", hidden=True)  # old names, for one release
app.command("serve", hidden=True)(deploy.serve)
app.add_typer(roles.app, name="roles")
app.add_typer(tokens.app, name="tokens")
app.command("server")(server.server)
app.add_typer(audit.app, name="audit")
app.command("lineage")(lineage.lineage)
app.command("drift")(drift.drift)
app.add_typer(triggers.app, name="triggers")
app.command("scheduler")(scheduler.scheduler)
app.command("init")(init.init)
app.add_typer(check.app, name="check")


@functools.cache
def command() -> Any:
    """The command tree built from :data:`app` once, with help in Click's vocabulary
    (``TEXT``, ``INTEGER``, flags without values; see :mod:`milepost.cli._help`)."""
    return polish(typer.main.get_command(app))


@functools.cache
def _command_named(name: str) -> Any:
    """The command tree with only the top-level command or group ``name`` in it.

    Building a command evaluates its callback's type hints (twice: Typer, then
    :func:`polish`), so a call builds only the branch it runs: ``milepost runs list``
    parses exactly as with the whole tree, without building the other 70 commands.
    """
    part = copy.copy(app)  # the same settings; only the lists below differ
    part.registered_groups = [g for g in app.registered_groups if g.name == name]
    part.registered_commands = [
        c for c in app.registered_commands if (c.name or _default_name(c)) == name
    ]
    return polish(typer.main.get_group(part))  # a group even with a single command


def _default_name(info: Any) -> str:
    callback = getattr(info, "callback", None)
    return typer.main.get_command_name(getattr(callback, "__name__", ""))


def _command_for(args: list[str]) -> Any:
    """The tree to run ``args`` on: one branch when they start with a known name."""
    names = {g.name for g in app.registered_groups}
    names |= {c.name or _default_name(c) for c in app.registered_commands}
    if args and args[0] in names:
        return _command_named(args[0])
    return command()  # help, typos (with suggestions), no arguments: the whole tree


@app.command()
def demo(
    rows: Annotated[
        int, typer.Option(min=500, max=1_000_000, help="Customers in the generated dataset.")
    ] = 5000,
    home: Annotated[
        Path | None,
        typer.Option(
            help="An empty or new directory for this run's stores (default: a new directory "
            "under ./.milepost-demo/ each run).",
        ),
    ] = None,
    ui: Annotated[
        bool,
        typer.Option(
            "--ui",
            help="Then serve the web UI and the API over the demo's home on 127.0.0.1 "
            "until Ctrl-C, with an admin token to log in.",
        ),
    ] = False,
    port: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=65535,
            help="Port of the --ui server (default 8080, or a free one when 8080 is taken; "
            "0 picks a free one).",
        ),
    ] = None,
) -> None:
    """Run the whole Milepost loop on the embedded default, explaining each step.

    Each run starts from an empty home, so it tells the same story every time; the last
    lines say how to point the next `milepost` commands at it. With --ui, the platform
    server then shows everything the demo made in the browser.
    """
    from milepost.demo.run import run_demo

    if not ui:
        if port is not None:
            from milepost.errors import InvalidInput

            raise InvalidInput("--port goes with --ui.", hint="Add --ui, or leave --port out.")
        run_demo(rows=rows, home=home)
        return
    from milepost.cli._demo_ui import bind, serve_demo
    from milepost.cli._output import console

    sock = bind(port)  # a port in use fails now, not after the demo
    try:
        run_demo(rows=rows, home=home)
        serve_demo(console, sock)
    finally:
        sock.close()


def _usage_errors() -> tuple[type[Exception], ...]:
    """Usage-error classes: Typer's own (it vendors Click since 0.2x) and Click's.

    Typer >= 0.2x raises ``typer._click`` exceptions, which ``click.exceptions`` does not
    catch; their public base is ``typer.exceptions.TyperException``. Older Typer raises
    Click's. Catching both keeps a typo a one-line error whichever is installed.
    """
    classes: list[type[Exception]] = [typer.exceptions.TyperException]
    click = sys.modules.get("click")  # only an imported Click can have raised its own
    if click is not None:  # (importing it just to catch costs every start ~10 ms)
        classes.append(click.exceptions.ClickException)
    return tuple(classes)


def _usage_line(exc: Exception) -> str:
    """One line: what was wrong and where to find help ("" once help was printed)."""
    format_message = getattr(exc, "format_message", None)
    message = format_message() if callable(format_message) else str(exc)
    message = " ".join(str(message).split())  # one line, whatever the parser wrote
    if not message:  # a group called without a command: Typer printed its help already
        return ""
    ctx = getattr(exc, "ctx", None)
    command = getattr(ctx, "command_path", None) or "milepost"
    return f"Error: {message.rstrip('.')}. See `{command} --help`."


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``milepost`` console script."""
    try:
        args = sys.argv[1:] if argv is None else list(argv)
        result = _command_for(args).main(args=args, prog_name="milepost", standalone_mode=False)
    except MilepostError as exc:
        hint = f" {exc.hint}" if exc.hint else ""
        err_console.print(f"[red]Error[/] \\[{exc.code}]: {escape(exc.message + hint)}")
        sys.exit(1)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("Aborted.")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:
        if isinstance(exc, _usage_errors()):
            line = _usage_line(exc)
            if line:
                err_console.print(escape(line), soft_wrap=True, highlight=False)
            sys.exit(int(getattr(exc, "exit_code", 2) or 2))
        err_console.print("Internal error (please report it with this traceback):")  # a bug
        traceback.print_exc()
        sys.exit(2)
    if isinstance(result, int) and result:
        sys.exit(result)
