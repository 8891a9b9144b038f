"""`milepost check ...`: the project's checks, the same on a laptop and in CI.

project (definitions, policy, triggers, references; nothing runs), consistency (every
feature view's offline and online paths on the same entities and times), lint, types
and tests (the project's own ruff, mypy and pytest, run by this Python).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from milepost.cli._output import console, emit_json

app = typer.Typer(
    help="Check your project: definitions, training-serving consistency, lint, types, "
    "tests (the steps its CI runs).",
    no_args_is_help=True,
)

if TYPE_CHECKING:
    from milepost.features.consistency import ConsistencyReport

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@app.command()
def project(as_json: JsonOpt = False) -> None:
    """Check milepost.toml's project table, the feature definitions, the policy, the triggers
    and the pipeline/train/sample_data references without running anything; exit 1 on
    any failure. With MILEPOST_URL set, also compare the server's policy with the file."""
    from milepost.project.check import check_project

    report = check_project()
    if as_json:
        emit_json(report.to_dict())
    else:
        # one line per check, unwrapped: a reference or a message reads whole (a table
        # squeezed into 80 columns broke both mid-word)
        width = max(len(c.name) for c in report.checks)
        for c in report.checks:
            verdict = "ok  " if c.ok else "[red]FAIL[/]"
            console.print(
                f"{verdict}  {escape(c.name.ljust(width))}  {escape(c.target)}: {escape(c.detail)}",
                soft_wrap=True,
                highlight=False,
            )
        bad = len(report.failures)
        if bad:
            console.print(f"[red]{bad} of {len(report.checks)} checks failed.[/]", highlight=False)
        else:
            console.print(f"{report.root}: all {len(report.checks)} checks passed.", markup=False)
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def consistency(
    views: Annotated[
        list[str] | None,
        typer.Argument(help="Views to check (VIEW or VIEW:vN); default every view."),
    ] = None,
    sample: Annotated[int, typer.Option(min=1, max=100_000, help="Entity rows per view.")] = 100,
    store: Annotated[
        bool,
        typer.Option(
            "--store",
            help="Check the configured stores as they are, now (default: a temporary "
            "sandbox built from the project's sample data).",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run every feature view and on-demand view through the offline and the online path
    on the same entity rows at the same moment; exit 1 when any value differs.

    Online reads one entity per call, as serving does; offline is one point-in-time
    retrieval. Rows come from the project's labels dataset (keys and request data).
    """
    from milepost.project.consistency import check_consistency

    reports = check_consistency(views=views, sample=sample, store=store)
    if as_json:
        emit_json([r.to_dict() for r in reports])
    else:
        for report in reports:
            print_consistency(report)
    if not all(r.ok for r in reports):
        raise typer.Exit(1)


def print_consistency(report: ConsistencyReport) -> None:
    """One view's verdict: ``VIEW:vN: N entities at T (K with values online): consistent``
    (a warning when K is 0: only nulls were compared), or each mismatching
    feature with its count and examples (``entity {...}: online X, offline Y``)."""
    head = (
        f"{report.view}: {report.checked} entities at {report.at} "
        f"({report.with_values} with values online): "
    )
    if report.ok and report.checked and not report.with_values:
        console.print(
            escape(head) + "[yellow]consistent, but only nulls were compared[/] (no entity "
            "has a value online at that moment: check the sample's times and the TTL)",
            highlight=False,
            soft_wrap=True,
        )
        return
    if report.ok:
        console.print(escape(head) + "[green]consistent[/]", highlight=False, soft_wrap=True)
        return
    console.print(escape(head) + "[red]MISMATCHES[/]", highlight=False, soft_wrap=True)
    for feature, count in report.mismatches.items():
        if not count:
            continue
        console.print(
            f"  {feature}: {count} of {report.checked} differ", markup=False, highlight=False
        )
        for ex in [e for e in report.examples if e["feature"] == feature][:3]:
            console.print(
                f"    entity {_entity(ex['entity'])}: online {ex['online']!r}, "
                f"offline {ex['offline']!r}",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )


def _entity(entity: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{k}: {v!r}" for k, v in entity.items()) + "}"


ExtraArgs = Annotated[
    list[str] | None,
    typer.Argument(help="More arguments for the tool, after --.", show_default=False),
]


def _run(kind: str, extra: list[str] | None = None, suite: str = "all") -> None:
    from milepost.project import load_project, tools

    project = load_project()
    if kind == "lint":
        commands = tools.lint_commands(project)
    elif kind == "types":
        commands = tools.type_commands(project, extra or ())
    else:
        commands = tools.pytest_commands(project, suite, extra or ())  # type: ignore[arg-type]

    def announce(command: tools.Command) -> None:
        console.print(f"$ {command}", style="dim", markup=False, highlight=False)
        console.file.flush()

    code = tools.run_commands(project, commands, announce=announce)
    if code:
        raise typer.Exit(code)


@app.command()
def lint() -> None:
    """Lint the project with its ruff settings: `ruff check .` and `ruff format --check .`
    in its root (this Python's ruff); exit with the tools' code."""
    _run("lint")


@app.command()
def types(args: ExtraArgs = None) -> None:
    """Type-check the project with its mypy settings ([tool.mypy]; `src` when they name
    no files); exit with mypy's code. Arguments after -- go to mypy."""
    _run("types", args)


@app.command()
def tests(
    args: Annotated[
        list[str] | None,
        typer.Argument(
            help="unit, integration or all (the default), then -- and arguments for pytest.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the project's tests with pytest (the unit_tests / integration_tests
    directories of milepost.toml's project table); exit with pytest's code.

    `milepost check tests unit -- -k features -x` passes -k features -x to pytest.
    """
    rest = list(args or [])
    suite = rest.pop(0) if rest and rest[0] in ("unit", "integration", "all") else "all"
    _run("tests", rest, suite)
