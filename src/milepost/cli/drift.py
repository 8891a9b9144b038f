"""`milepost drift REFERENCE CURRENT`: compare two data files feature by feature."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from milepost.cli._output import Col, console, emit_json, fit_table
from milepost.errors import InvalidInput, NotFound, did_you_mean

if TYPE_CHECKING:
    import pandas as pd

#: File suffixes `milepost drift` reads, and how.
READERS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def read_table(path: Path, side: str) -> pd.DataFrame:
    """One side's rows from a CSV or Parquet file, or a clear error saying what to fix."""
    import pandas as pd

    kind = READERS.get(path.suffix.lower())
    if kind is None:
        raise InvalidInput(
            f"The {side} file {str(path)!r} is not a .csv or .parquet file.",
            hint="Pass a CSV file (with a header row) or a Parquet file.",
        )
    if not path.is_file():
        raise NotFound(
            f"No {side} file {str(path)!r}.",
            hint="Check the path (relative paths start from the current directory).",
        )
    try:
        frame = pd.read_csv(path) if kind == "csv" else pd.read_parquet(path)
    except Exception as exc:  # pandas and pyarrow raise many kinds for a bad file
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise InvalidInput(
            f"Cannot read the {side} file {str(path)!r} as {kind.upper()}: {reason}",
            hint=f"Check that it is a valid {kind.upper()} file"
            + (" with a header row." if kind == "csv" else "."),
        ) from exc
    if len(frame.columns) == 0:
        raise InvalidInput(
            f"The {side} file {str(path)!r} has no columns.",
            hint="Pass a file with a header row and at least one column.",
        )
    return frame


def _categorical(value: str | None, reference: pd.DataFrame, current: pd.DataFrame) -> list[str]:
    names = [n.strip() for n in (value or "").split(",") if n.strip()]
    known = list(dict.fromkeys([*reference.columns, *current.columns]))
    for name in names:
        if name not in known:
            raise InvalidInput(
                f"--categorical names {name!r}, which neither file has.",
                hint=did_you_mean(name, [str(k) for k in known])
                or f"Columns: {', '.join(map(str, known[:20]))}.",
            )
    return names


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return escape(str(value))


def drift(
    reference: Annotated[
        Path, typer.Argument(help="The reference data (e.g. the training set): .csv or .parquet.")
    ],
    current: Annotated[
        Path, typer.Argument(help="The data to compare with it (e.g. recent traffic).")
    ],
    categorical: Annotated[
        str | None,
        typer.Option(
            help="Columns to treat as categories whatever their type, comma-separated "
            "(e.g. plan,region); text columns are categories already."
        ),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(help="Write the HTML report to this file, and its JSON beside it."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary and the table as JSON.")
    ] = False,
) -> None:
    """Compare CURRENT with REFERENCE feature by feature: prints each feature and
    method's statistic and verdict, then the dataset's; --report writes the HTML report.
    """
    from milepost.monitoring import drift as compute_drift
    from milepost.monitoring import report_json, write_report

    ref, cur = read_table(reference, "reference"), read_table(current, "current")
    names = _categorical(categorical, ref, cur)
    result = compute_drift(ref, cur, categorical=names or None)
    title = f"Drift: {current.name} vs {reference.name}"
    # the files' names label the two sides where a monitor would show its windows
    sides: dict[str, Any] = {
        "title": title,
        "reference_window": reference.name,
        "current_window": current.name,
    }
    content = report_json(result, **sides)
    paths = None if report is None else write_report(report, result, **sides)
    summary = content["summary"]
    if as_json:
        out = {"summary": summary, "features": content["features"]}
        if paths is not None:
            out["report"] = {"html": str(paths[0]), "json": str(paths[1])}
        emit_json(out)
        return
    rows = content["features"]
    table, _ = fit_table(
        [
            Col("feature", wrap=True),
            "method",
            Col("statistic", justify="right"),
            Col("p-value", justify="right"),
            Col("threshold", justify="right"),
            "drifted",
            "kind",
            "status",
        ],
        [
            [
                _cell(r["feature"]),
                _cell(r["method"]) + (" *" if r.get("counted") else ""),
                _cell(r["statistic"]),
                _cell(r["p_value"]),
                _cell(r["threshold"]),
                "[red]yes[/]" if r["drifted"] else "no",
                _cell(r.get("kind")),
                _cell(r.get("status")),
            ]
            for r in rows
        ],
        optional=2,
    )
    console.print(table)
    if any(r.get("counted") for r in rows):
        console.print("* the method that decides whether its feature drifted")
    k, n = summary["drifted_features"], summary["features"]
    verdict = "[red]drift detected[/]" if summary["dataset_drift"] else "no drift detected"
    line = f"Dataset: {verdict}: {k} of {n} features drifted ({summary['drifted_share']:.1%})"
    if summary["drifted_names"]:
        line += f": {escape(', '.join(summary['drifted_names']))}"
    console.print(line + ".")
    console.print(
        f"Reference {escape(reference.name)}: {summary['reference']['rows']:,} rows; "
        f"current {escape(current.name)}: {summary['current']['rows']:,} rows."
    )
    if paths is not None:
        console.print(f"Report: {escape(str(paths[0]))} (and {escape(paths[1].name)})")
