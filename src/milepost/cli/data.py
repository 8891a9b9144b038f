"""`milepost data ...`"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from milepost.cli._output import Col, console, emit_json, fit_table, fmt_time, fmt_value
from milepost.cli._runtime import runtime

if TYPE_CHECKING:
    from milepost.data.models import DatasetVersion

app = typer.Typer(help="Version datasets and validate them.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _summary(v: DatasetVersion) -> str:
    return (
        f"[bold]{v.ref}[/] · {v.num_rows:,} rows · {len(v.schema)} columns · "
        f"{v.num_files} file(s), {v.size_bytes:,} bytes · sha256 {v.content_hash[:12]}"
    )


@app.command()
def register(
    name: Annotated[str, typer.Argument(help="Dataset name, e.g. customers.")],
    paths: Annotated[list[str], typer.Argument(help="Parquet/CSV files, directories or globs.")],
    description: Annotated[str | None, typer.Option(help="What this version is.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Register files as a new version of NAME (the same content returns the existing one)."""
    v = runtime().data.register(
        name, paths if len(paths) > 1 else paths[0], description=description
    )
    if as_json:
        emit_json(v.to_dict())
    else:
        console.print(f"Registered {_summary(v)}")


#: `data add`, the old name of `data register` (as `milepost.data.register`), for one release.
app.command("add", hidden=True)(register)


@app.command("list")
def list_(as_json: JsonOpt = False) -> None:
    """List datasets with their newest version."""
    rows = runtime().data.list_datasets()
    if as_json:
        emit_json([r.to_dict() for r in rows])
        return
    table, _ = fit_table(
        [
            Col("dataset", wrap=True),
            "latest",
            "versions",
            Col("description", wrap=True),
            "created by",
            "created (UTC)",
        ],
        [
            [
                r.name,
                str(r.latest_version or "-"),
                str(r.num_versions),
                escape(r.description or ""),
                r.created_by,
                fmt_time(r.created_at),
            ]
            for r in rows
        ],
        optional=2,
    )
    console.print(table)


@app.command()
def show(
    ref: Annotated[str, typer.Argument(help="NAME, NAME@N or NAME@latest")],
    as_json: JsonOpt = False,
) -> None:
    """Show a version: schema, profile, runs that used it, validation results."""
    data = runtime().data
    v = data.get(ref)
    used = data.runs_using(v)
    checks = data.validations(v, limit=5)
    if as_json:
        out = v.to_dict()
        out["used_by"] = [u.to_dict() for u in used]
        out["validations"] = [
            {
                "result_id": r.result_id,
                "suite": r.suite_name,
                "success": r.success,
                "failed": len(r.failing),
                "created_at": r.created_at,
            }
            for r in checks
        ]
        out["versions"] = [x.version for x in data.versions(v.name)]
        emit_json(out)
        return
    console.print(_summary(v))
    console.print(
        f"created {fmt_time(v.created_at)} by {v.created_by} · source {v.source_uri or '-'}"
        + (f" · {v.description}" if v.description else "")
    )
    rows = []
    for c in v.schema:
        p = v.profile.get(c.name, {})
        rows.append(
            [
                c.name,
                c.logical_type,
                f"{p['nulls']:,}" if isinstance(p.get("nulls"), int) else "",
                _distinct(p),
                escape(_profile_summary(p)),
            ]
        )
    table, _ = fit_table(
        [
            "column",
            "type",
            Col("nulls", justify="right"),
            Col("distinct", justify="right"),
            Col("values", wrap=True),
        ],
        rows,
        title="profile",
        title_justify="left",
    )
    console.print(table)
    if used:
        table, _ = fit_table(
            ["run", "role", "recorded (UTC)"],
            [[u.run_id[:12], u.role, fmt_time(u.created_at)] for u in used],
            title="used by",
            title_justify="left",
        )
        console.print(table)
    if checks:
        table, _ = fit_table(
            ["result", Col("suite", wrap=True), "verdict", "when (UTC)"],
            [
                [
                    r.result_id[:12],
                    escape(r.suite_name),
                    "[green]passed[/]" if r.success else f"[red]{len(r.failing)} failed[/]",
                    fmt_time(r.created_at),
                ]
                for r in checks
            ],
            title="validations",
            title_justify="left",
        )
        console.print(table)


def _profile_summary(p: dict[str, Any]) -> str:
    """Numbers as ``min .. max, mean m (std s)``; text as its most frequent values."""
    if p.get("top"):
        return ", ".join(f"{t['value']} ({t['count']:,})" for t in p["top"][:3])
    low, high = p.get("min"), p.get("max")
    if low is None and high is None:
        return ""
    text = f"{_bound(low)} .. {_bound(high)}"
    if p.get("mean") is not None:
        text += f", mean {fmt_value(p['mean'])}"
        if p.get("std") is not None:
            text += f" (std {fmt_value(p['std'])})"
    return text


def _bound(value: Any) -> str:
    """A minimum or maximum: times to the second (``2026-08-02 02:53:29``), numbers short."""
    if isinstance(value, str) and len(value) >= 19 and value[10:11] == "T":
        return value[:19].replace("T", " ")
    return fmt_value(value)


def _distinct(p: dict[str, Any]) -> str:
    """An exact distinct count as is, an estimate as ``~N`` (never above the non-null rows)."""
    if "distinct" in p:
        return f"{p['distinct']:,}" if p.get("distinct_exact") else f"~{p['distinct']:,}"
    if "distinct_approx" in p:  # a profile from before exact counts
        return f"~{p['distinct_approx']:,}"
    return ""


@app.command()
def diff(
    a: Annotated[str, typer.Argument(help="The older version, e.g. customers@1.")],
    b: Annotated[str, typer.Argument(help="The newer version, e.g. customers@2.")],
    as_json: JsonOpt = False,
) -> None:
    """Compare two versions: schema changes, row count, per-column statistics."""
    from milepost.data._format import format_stat

    d = runtime().data.diff(a, b)
    if as_json:
        emit_json(d.to_dict())
        return
    console.print(f"[bold]{d.a} → {d.b}[/]" + (" (identical content)" if d.same_content else ""))
    change = d.rows[1] - d.rows[0]
    console.print(f"rows: {d.rows[0]:,} → {d.rows[1]:,} ({change:+,})")
    for c in d.added:
        console.print(f"[green]+ column {c.name} ({c.type})[/]")
    for c in d.removed:
        console.print(f"[red]- column {c.name} ({c.type})[/]")
    for name, old, new in d.retyped:
        console.print(f"[yellow]~ column {name}: {old} → {new}[/]")
    if d.stats:
        table, _ = fit_table(
            ["column", "statistic", Col("from", wrap=True), Col("to", wrap=True)],
            [
                [col, stat, escape(format_stat(old)), escape(format_stat(new))]
                for col, changes in d.stats.items()
                for stat, (old, new) in changes.items()
            ],
        )
        console.print(table)


@app.command()
def validate(
    ref: Annotated[str, typer.Argument(help="NAME, NAME@N or NAME@latest")],
    suite: Annotated[Path, typer.Argument(help="The suite's YAML file.")],
    strict: Annotated[bool, typer.Option(help="Exit 1 when a check fails.")] = True,
    html: Annotated[Path | None, typer.Option(help="Also write an HTML report here.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Validate a dataset version against a suite; the result is stored with the version."""
    data = runtime().data
    result = data.validate(data.get(ref), suite)
    if html is not None:
        html.write_text(result.to_html())
    if as_json:
        emit_json(result.to_dict())
    else:
        console.print(result.to_text(), markup=False, highlight=False)
        if html is not None:
            console.print(f"HTML report: {html}")
    if strict and not result.success:
        raise typer.Exit(1)
