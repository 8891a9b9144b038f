"""`milepost pipelines ...`: run, resume, list, runs, show, logs.

A pipeline is a ``@milepost.pipeline`` function named by its ``module:attr`` ref; each run
is recorded (parameters, code version, every step's status, timings, outputs and logs) and
a failed one can be resumed from its failed step (see
:mod:`milepost.pipelines.service`). ``run`` and ``resume`` exit 1 when the run failed.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from milepost.cli._output import Col, console, emit_json, fit_table, fmt_time
from milepost.cli._pipeline_view import STEP_STYLE, StepView, fmt_duration, summary_line
from milepost.cli._runtime import runtime
from milepost.errors import InvalidInput

if TYPE_CHECKING:
    from milepost.pipelines.models import PipelineRun, StepRun

app = typer.Typer(
    help="Pipelines: typed steps wired into a DAG, run locally or on Dask, each run and "
    "step recorded, cached and resumable.",
    no_args_is_help=True,
)


class RunnerName(enum.StrEnum):
    """Where steps run."""

    local = "local"
    dask = "dask"


class RunStatus(enum.StrEnum):
    """A pipeline run's status."""

    running = "running"
    succeeded = "succeeded"
    failed = "failed"


RunArg = Annotated[
    str, typer.Argument(help="Pipeline run id, or its first characters (`pipelines runs`).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
RunnerOpt = Annotated[
    RunnerName, typer.Option(help="Where steps run: local (process pool) or dask.")
]
AddressOpt = Annotated[
    str | None,
    typer.Option(help="Dask scheduler address (tcp://host:8786); default a local cluster."),
]
WorkersOpt = Annotated[
    int | None, typer.Option(min=1, max=1024, help="Parallel steps (local pool or Dask workers).")
]
#: Log lines shown under a failed step.
LOG_TAIL = 20


def _params(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(
                f"--param {item!r} is not NAME=VALUE.",
                hint="For example --param rows=1000 --param c=0.5.",
            )
        out[key.strip()] = value
    return out


def _status(status: str) -> str:
    style = STEP_STYLE.get(status, "")
    return f"[{style}]{status}[/]" if style else status


def _outcome(run: PipelineRun) -> None:
    """The summary line; on failure the failed step, its error, its last log lines and
    the command that resumes the run. Exits 1 when the run failed."""
    verb = {"succeeded": "[green]succeeded[/]", "failed": "[red]failed[/]"}.get(
        run.status, run.status
    )
    console.print(f"Pipeline run {run.run_id} ({escape(run.pipeline)}) {verb}.")
    console.print(summary_line(run))
    if run.status != "failed":
        return
    if run.failed_step:
        console.print(f"[red]Step {escape(run.failed_step)} failed:[/] {escape(run.error or '')}")
        logs = runtime().pipelines.logs(run.run_id, run.failed_step).rstrip("\n")
        if logs:
            lines = logs.splitlines()[-LOG_TAIL:]
            console.print(f"Last {len(lines)} log line(s) of {escape(run.failed_step)}:")
            for line in lines:
                console.print(f"  {escape(line)}", highlight=False)
    elif run.error:
        console.print(f"[red]Error:[/] {escape(run.error)}")
    console.print(
        f"Fix the cause, then resume with: milepost pipelines resume {run.run_id}", soft_wrap=True
    )
    raise typer.Exit(1)


def run(
    ref: Annotated[str, typer.Argument(help="The pipeline as module:attr (importable).")],
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="A parameter as NAME=VALUE; repeatable."),
    ] = None,
    runner: RunnerOpt = RunnerName.local,
    address: AddressOpt = None,
    workers: WorkersOpt = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Run every step, reusing no earlier outputs.")
    ] = False,
    run_id: Annotated[
        str | None, typer.Option(help="The run's id (32 hex characters); default a new one.")
    ] = None,
    trigger: Annotated[
        str | None, typer.Option(help="The trigger firing that launched this run.")
    ] = None,
) -> None:
    """Run a pipeline: live step progress, then a summary; exit 1 if a step failed."""
    params = _params(param or [])
    with StepView() as view:
        result = runtime().pipelines.run(
            ref,
            params,
            runner=runner.value,
            address=address,
            max_workers=workers,
            cache=not no_cache,
            run_id=run_id,
            trigger=trigger,
            on_event=view,
        )
    _outcome(result)


def resume(
    run_id: RunArg,
    runner: Annotated[
        RunnerName | None, typer.Option(help="local or dask; default the failed run's runner.")
    ] = None,
    address: AddressOpt = None,
    workers: WorkersOpt = None,
) -> None:
    """Run a failed run again as a new run, reusing the steps that succeeded."""
    console.print(f"Resuming pipeline run {run_id} as a new run:")
    with StepView() as view:
        result = runtime().pipelines.resume(
            run_id,
            runner=None if runner is None else runner.value,
            address=address,
            max_workers=workers,
            on_event=view,
        )
    _outcome(result)


def list_(as_json: JsonOpt = False) -> None:
    """Every pipeline that has run: ref, runs, the latest run."""
    found = runtime().pipelines.list_pipelines()
    if as_json:
        emit_json([p.to_dict() for p in found])
        return
    if not found:
        console.print("No pipeline has run yet. Run one: milepost pipelines run module:pipeline")
        return
    rows = [
        [
            escape(p.name),
            f"{p.runs:,}",
            _status(p.last_status),
            fmt_time(p.last_started_at),
            p.last_run_id[:12],
            escape(p.ref),
        ]
        for p in found
    ]
    cols: list[Col | str] = ["pipeline", Col("runs", justify="right"), "last status"]
    table, _ = fit_table([*cols, "last started (UTC)", "last run", "ref"], rows, optional=2)
    console.print(table)


def runs(
    pipeline: Annotated[str | None, typer.Argument(help="Only this pipeline's runs.")] = None,
    status: Annotated[RunStatus | None, typer.Option(help="Only runs in this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Pipeline runs, newest first."""
    found = runtime().pipelines.list_runs(
        pipeline, status=None if status is None else status.value, limit=limit
    )
    if as_json:
        emit_json([r.to_dict() for r in found])
        return
    if not found:
        console.print("No pipeline runs.")
        return
    rows = []
    for r in found:
        c = r.counts()
        steps = f"{len(r.steps)}: {c['succeeded']} ok, {c['cached']} cached, {c['failed']} failed"
        rows.append(
            [
                r.run_id[:12],
                escape(r.pipeline),
                _status(r.status),
                fmt_time(r.started_at),
                fmt_duration(r.duration_ms),
                steps,
                escape(r.failed_step or "-"),
                r.trigger or "-",
            ]
        )
    cols: list[Col | str] = ["run", "pipeline", "status", "started (UTC)"]
    cols += [Col("duration", justify="right"), "steps", "failed step", "trigger"]
    table, _ = fit_table(cols, rows, optional=3)
    console.print(table)


def _options(options: dict[str, Any]) -> list[str]:
    """The settings that differ from a plain step's, in words."""
    out = []
    if options.get("retries"):
        out.append(f"retries {options['retries']}")
    if options.get("timeout"):
        out.append(f"timeout {float(options['timeout']):g} s")
    if options.get("track"):
        out.append("tracked")
    if options.get("cache") is False:
        out.append("never cached")
    return out


def _step_lines(s: StepRun) -> list[str]:
    head = f"[bold]{escape(s.step)}[/] {_status(s.status)}"
    if s.attempts > 1:
        head += f" · {s.attempts} attempts"
    if s.duration_ms is not None:
        head += f" · {fmt_duration(s.duration_ms)}"
    if s.cached_from:
        head += f" · cached from run {s.cached_from}"
    head += "".join(f" · {o}" for o in _options(s.options))
    lines = [head]
    if s.func:
        lines.append(f"    function: {escape(s.func)}")
    if s.upstream:
        lines.append("    after: " + escape(", ".join(s.upstream)))
    for o in s.outputs:
        lines.append(
            f"    output {escape(o.name)}: {o.format}, {o.size:,} bytes, {escape(o.summary)}"
        )
    for link in s.links:
        verb = "made" if link.role == "output" else "read"
        lines.append(f"    {verb} {link.kind.replace('_', ' ')} {escape(link.ref)}")
    if s.error:
        lines.append(f"    [red]error:[/] {escape(s.error)}")
    return lines


def show(run_id: RunArg, as_json: JsonOpt = False) -> None:
    """A run: parameters, code version, and each step's status, timings, cache, outputs
    and links."""
    r = runtime().pipelines.get_run(run_id)
    if as_json:
        emit_json(r.to_dict())
        return
    console.print(
        f"[bold]{escape(r.pipeline)}[/] run {r.run_id} · {_status(r.status)} · "
        f"{r.runner} runner · by {escape(r.actor)}",
        soft_wrap=True,
    )
    ended = f"{fmt_time(r.ended_at)} UTC" if r.ended_at is not None else "not yet"
    console.print(
        f"started {fmt_time(r.started_at)} UTC · ended {ended} · {fmt_duration(r.duration_ms)}"
    )
    console.print(f"ref {escape(r.ref)}")
    params = ", ".join(f"{k}={v!r}" for k, v in r.params.items()) or "none"
    console.print(f"params: {escape(params)}")
    cv = r.code_version
    commit = (cv.get("commit") or "no git")[:12] + (" (dirty)" if cv.get("dirty") else "")
    source = (cv.get("source_sha256") or "-")[:12]
    console.print(f"code: {commit} · source sha256 {source}")
    if r.resumed_from:
        console.print(f"resumed from {r.resumed_from}")
    if r.trigger:
        console.print(f"trigger firing {escape(r.trigger)}")
    if r.error:
        where = f" at {escape(r.failed_step)}" if r.failed_step else ""
        console.print(f"[red]failed{where}:[/] {escape(r.error)}")
    console.print(summary_line(r))
    for s in r.steps:
        for line in _step_lines(s):
            console.print(line, highlight=False, soft_wrap=True)


def logs(
    run_id: RunArg,
    step: Annotated[str, typer.Argument(help="Step id (`pipelines show RUN` lists them).")],
) -> None:
    """What a step printed and logged (stdout, stderr, log records)."""
    text = runtime().pipelines.logs(run_id, step)
    if text:
        typer.echo(text, nl=not text.endswith("\n"))
    else:
        console.print(f"No logs captured for step {escape(step)}.")


app.command()(run)
app.command()(resume)
app.command("list")(list_)
app.command()(runs)
app.command()(show)
app.command()(logs)
