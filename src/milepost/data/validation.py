"""Expectation suites: declarative checks run by DuckDB over the data, streaming.

A suite is a named list of checks, written in Python or YAML::

    name: customers
    checks:
      - {kind: schema, columns: {customer_id: integer, plan: string}}
      - {kind: not_null, column: customer_id}
      - {kind: between, column: age, min: 18, max: 100}
      - {kind: in_set, column: plan, values: [basic, standard, premium]}
      - {kind: unique, columns: [customer_id]}
      - {kind: row_count, min: 1000}
      - {kind: freshness, column: event_timestamp, max_age: 3d}
      - {kind: distribution, column: monthly_spend, reference: customers@1,
         method: psi, threshold: 0.2}

Row-level checks (``not_null``, ``between``, ``in_set``, ``matches``, ``expression``) take
``mostly``: the fraction of rows that must pass (default 1.0, every row). Each check's
result carries the observed value (numbers, for machines), a one-sentence ``summary`` for
people (``all 2,000 rows pass (age in [18, 100])``, ``plan distribution vs customers@1:
PSI 0.016 <= 0.2``), the number of failing rows and a few example rows.

The checks are SQL run by DuckDB on the Parquet snapshot (or an in-memory table), so
validating ten million rows needs no more memory than a few column chunks; values come
in as bound parameters. ``expression`` runs the SQL it is given: suites are code, trust
them as you trust code.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import pyarrow as pa
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from milepost import _validate as check
from milepost.data._format import count, format_bound, human_duration
from milepost.data._profile import quote
from milepost.data.results import CheckResult
from milepost.errors import InvalidInput
from milepost.monitoring.stats import ks_test, psi_categorical, psi_from_samples

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import duckdb

__all__ = [
    "Between",
    "Check",
    "CheckContext",
    "CheckResult",
    "Distribution",
    "Expression",
    "Freshness",
    "InSet",
    "Matches",
    "NotNull",
    "RowCount",
    "Schema",
    "Suite",
    "Unique",
]

_EXAMPLES = 5
_SAMPLE_ROWS = 200_000


@dataclass
class CheckContext:
    """What a check runs against: a DuckDB connection with a ``data`` view."""

    con: duckdb.DuckDBPyConnection
    schema: pa.Schema
    num_rows: int
    now: datetime
    reference: Callable[[str], str]  # dataset ref -> SQL relation over its snapshot


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _examples(
    ctx: CheckContext, where: str, params: list[Any], *, first: str = ""
) -> list[dict[str, Any]]:
    """A few failing rows, the checked column first."""
    cur = ctx.con.execute(f"SELECT * FROM data WHERE {where} LIMIT {_EXAMPLES}", params)
    names = [d[0] for d in cur.description or []]
    order = sorted(range(len(names)), key=lambda i: names[i] != first)
    return [{names[i]: _jsonable(row[i]) for i in order} for row in cur.fetchall()]


def _need_column(ctx: CheckContext, column: str) -> None:
    if column not in ctx.schema.names:
        from milepost.errors import did_you_mean

        raise _MissingColumn(
            f"column {column!r} does not exist.{did_you_mean(column, ctx.schema.names)}"
        )


class _MissingColumn(Exception):
    """A check names a column the data lacks: the check fails with this message."""


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: str
    name: str | None = Field(default=None, description="A label for reports.")

    def label(self) -> str:
        """The check's name in reports."""
        return self.name or self.default_name()

    def __repr_args__(self) -> Any:
        # what was written: NotNull(column='customer_id'), not every default
        for key, value in super().__repr_args__():
            if key in self.model_fields_set and key != "kind":
                yield key, value

    def to_dict(self) -> dict[str, Any]:
        """The check as plain data (what a suite's YAML holds)."""
        return self.model_dump(mode="json", exclude_none=True)

    def default_name(self) -> str:  # pragma: no cover - each check overrides it
        raise NotImplementedError

    def run(self, ctx: CheckContext) -> CheckResult:
        """Evaluate the check (a missing column fails it with a clear message)."""
        try:
            return self.evaluate(ctx)
        except _MissingColumn as exc:
            column = getattr(self, "column", None)
            return CheckResult(
                self.label(),
                self.kind,
                False,
                None,
                "column present",
                column=column,
                message=str(exc),
            )

    def evaluate(self, ctx: CheckContext) -> CheckResult:  # pragma: no cover
        raise NotImplementedError


class _RowCheck(_Base):
    """A check that each row passes; ``mostly`` is the fraction that must."""

    column: str
    mostly: float = Field(default=1.0, ge=0.0, le=1.0)

    def failing(self, ctx: CheckContext) -> tuple[str, list[Any]]:  # pragma: no cover
        raise NotImplementedError

    def expected(self) -> str:  # pragma: no cover
        raise NotImplementedError

    def evaluate(self, ctx: CheckContext) -> CheckResult:
        if self.column:
            _need_column(ctx, self.column)
        where, params = self.failing(ctx)
        row = ctx.con.execute(f"SELECT count(*) FROM data WHERE {where}", params).fetchall()[0]
        bad, n = int(row[0]), ctx.num_rows
        fraction = bad / n if n else 0.0
        success = (1.0 - fraction) >= self.mostly if bad else True
        expected = self.expected()
        failed = f"{bad:,} of {count(n, 'row')} ({fraction:.2%}) fail"
        if not bad:
            summary = f"all {count(n, 'row')} pass ({expected})" if n else "no rows to check"
        elif success:
            summary = f"{failed}, within mostly {self.mostly:g} ({expected})"
        else:
            summary = f"{failed}: {expected}"
        return CheckResult(
            name=self.label(),
            kind=self.kind,
            column=self.column,
            success=success,
            observed={"failing_rows": bad, "rows": n},
            expected=expected + (f" (mostly {self.mostly:g})" if self.mostly < 1 else ""),
            failing_rows=bad,
            failing_fraction=fraction,
            examples=_examples(ctx, where, params, first=self.column) if bad else [],
            message="" if success else summary,
            summary=summary,
        )


class NotNull(_RowCheck):
    """The column has no nulls."""

    kind: Literal["not_null"] = "not_null"

    def default_name(self) -> str:
        return f"{self.column} not null"

    def expected(self) -> str:
        return f"{self.column} is never null"

    def failing(self, ctx: CheckContext) -> tuple[str, list[Any]]:
        return f"{quote(self.column)} IS NULL", []


class Between(_RowCheck):
    """Values lie within ``[min, max]`` (either bound optional; nulls are not checked)."""

    kind: Literal["between"] = "between"
    min: float | str | None = None
    max: float | str | None = None
    strict: bool = Field(default=False, description="Exclude the bounds themselves.")

    def default_name(self) -> str:
        return f"{self.column} in range"

    def expected(self) -> str:
        lo, hi = format_bound(self.min), format_bound(self.max)
        if self.min is None:
            return f"{self.column} {'<' if self.strict else '<='} {hi}"
        if self.max is None:
            return f"{self.column} {'>' if self.strict else '>='} {lo}"
        return (
            f"{self.column} in {'(' if self.strict else '['}{lo}, {hi}{')' if self.strict else ']'}"
        )

    def failing(self, ctx: CheckContext) -> tuple[str, list[Any]]:
        if self.min is None and self.max is None:
            raise InvalidInput(f"Check {self.label()!r}: give min, max or both.")
        c = quote(self.column)
        parts, params = [], []
        if self.min is not None:
            parts.append(f"{c} {'<=' if self.strict else '<'} ?")
            params.append(self.min)
        if self.max is not None:
            parts.append(f"{c} {'>=' if self.strict else '>'} ?")
            params.append(self.max)
        return "(" + " OR ".join(parts) + ")", params


class InSet(_RowCheck):
    """Values come from an allowed set (nulls are not checked)."""

    kind: Literal["in_set"] = "in_set"
    values: list[Any] = Field(min_length=1)

    def default_name(self) -> str:
        return f"{self.column} allowed values"

    def expected(self) -> str:
        shown = ", ".join(repr(v) for v in self.values[:10])
        return f"{self.column} in {{{shown}{', ...' if len(self.values) > 10 else ''}}}"

    def failing(self, ctx: CheckContext) -> tuple[str, list[Any]]:
        marks = ", ".join("?" for _ in self.values)
        return f"{quote(self.column)} NOT IN ({marks})", list(self.values)


class Matches(_RowCheck):
    """Text values fully match a regular expression (nulls are not checked)."""

    kind: Literal["matches"] = "matches"
    pattern: str

    def default_name(self) -> str:
        return f"{self.column} matches pattern"

    def expected(self) -> str:
        return f"{self.column} matches /{self.pattern}/"

    def failing(self, ctx: CheckContext) -> tuple[str, list[Any]]:
        try:
            re.compile(self.pattern)
        except re.error as exc:
            raise InvalidInput(
                f"Check {self.label()!r}: bad pattern {self.pattern!r}: {exc}."
            ) from exc
        return f"NOT regexp_full_match(CAST({quote(self.column)} AS VARCHAR), ?)", [self.pattern]


class Expression(_RowCheck):
    """A SQL boolean expression every row satisfies, e.g. ``spend >= 0 OR plan = 'free'``."""

    kind: Literal["expression"] = "expression"
    column: str = ""
    expression: str

    def default_name(self) -> str:
        return self.expression

    def expected(self) -> str:
        return self.expression

    def evaluate(self, ctx: CheckContext) -> CheckResult:
        import duckdb

        try:
            return super().evaluate(ctx)
        except duckdb.Error as exc:
            raise InvalidInput(
                f"Check {self.label()!r}: the expression is not valid SQL here: {exc}"
            ) from exc

    def failing(self, ctx: CheckContext) -> tuple[str, list[Any]]:
        return f"NOT coalesce(({self.expression}), false)", []


class Unique(_Base):
    """No two rows share the same values in ``columns`` (nulls count as values)."""

    kind: Literal["unique"] = "unique"
    columns: list[str] = Field(min_length=1)

    def default_name(self) -> str:
        return f"{', '.join(self.columns)} unique"

    def evaluate(self, ctx: CheckContext) -> CheckResult:
        for c in self.columns:
            _need_column(ctx, c)
        cols = ", ".join(quote(c) for c in self.columns)
        dup = f"SELECT {cols}, count(*) AS n FROM data GROUP BY ALL HAVING count(*) > 1"
        keys, rows = ctx.con.execute(
            f"SELECT count(*), coalesce(sum(n), 0) FROM ({dup})"
        ).fetchall()[0]
        examples = []
        if keys:
            cur = ctx.con.execute(f"{dup} ORDER BY n DESC LIMIT {_EXAMPLES}")
            names = [d[0] for d in cur.description or []]
            examples = [
                {k: _jsonable(v) for k, v in zip(names, r, strict=True)} for r in cur.fetchall()
            ]
        keys, rows, n = int(keys), int(rows), ctx.num_rows
        what = ", ".join(self.columns)
        what = f"({what})" if len(self.columns) > 1 else what
        summary = (
            f"no {what} repeats among {count(n, 'row')}"
            if keys == 0
            else f"{count(keys, 'value')} of {what} repeat{'s' if keys == 1 else ''}, "
            f"on {rows:,} of {count(n, 'row')}"
        )
        return CheckResult(
            name=self.label(),
            kind=self.kind,
            column=",".join(self.columns),
            success=keys == 0,
            observed={"duplicated_values": keys, "rows_with_duplicates": rows, "rows": n},
            expected=f"{what} unique",
            failing_rows=rows,
            failing_fraction=rows / n if n else 0.0,
            examples=examples,
            message="" if keys == 0 else summary,
            summary=summary,
        )


class RowCount(_Base):
    """The number of rows lies within ``[min, max]``."""

    kind: Literal["row_count"] = "row_count"
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)

    def default_name(self) -> str:
        return "row count"

    def evaluate(self, ctx: CheckContext) -> CheckResult:
        n = ctx.num_rows
        ok = (self.min is None or n >= self.min) and (self.max is None or n <= self.max)
        expected = self.expected()
        return CheckResult(
            self.label(),
            self.kind,
            ok,
            n,
            expected,
            message="" if ok else f"{count(n, 'row')}, expected {expected}",
            summary=f"{count(n, 'row')}" + (f" ({expected})" if ok else f", expected {expected}"),
        )

    def expected(self) -> str:
        """``at least 1,000 rows``, ``at most 5,000 rows``, ``between ... and ... rows``."""
        if self.min is not None and self.max is not None:
            return f"between {self.min:,} and {count(self.max, 'row')}"
        if self.min is not None:
            return f"at least {count(self.min, 'row')}"
        if self.max is not None:
            return f"at most {count(self.max, 'row')}"
        return "any number of rows"


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str | float) -> timedelta:
    """``90s``, ``15m``, ``36h``, ``3d``, ``2w`` or a number of seconds."""
    if isinstance(text, (int, float)):
        return timedelta(seconds=float(text))
    m = _DURATION.match(text)
    if not m:
        raise InvalidInput(f"Duration {text!r} is not like '36h', '3d' or '90s'.")
    return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])


class Freshness(_RowCheck):
    """The newest timestamp is no older than ``max_age`` (naive times are read as UTC)."""

    kind: Literal["freshness"] = "freshness"
    max_age: str | float

    def default_name(self) -> str:
        return f"{self.column} fresh"

    def evaluate(self, ctx: CheckContext) -> CheckResult:
        _need_column(ctx, self.column)
        age = parse_duration(self.max_age)
        newest = ctx.con.execute(f"SELECT max({quote(self.column)}) FROM data").fetchall()[0][0]
        now = ctx.now if ctx.now.tzinfo else ctx.now.replace(tzinfo=UTC)
        expected = (
            f"newest {self.column} at most {human_duration(age)} old "
            f"at {now.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
        )
        if newest is None:
            return CheckResult(
                self.label(),
                self.kind,
                False,
                None,
                expected,
                column=self.column,
                message=f"{self.column} has no values",
            )
        if not isinstance(newest, datetime):
            newest = datetime.combine(newest, datetime.min.time())
        if newest.tzinfo is None:
            newest = newest.replace(tzinfo=UTC)
        lag = now - newest
        ok = lag <= age
        shown = f"{newest.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
        if lag.total_seconds() < 0:
            summary = f"newest {self.column} {shown} is {human_duration(lag)} in the future"
        else:
            summary = f"newest {self.column} {shown} is {human_duration(lag)} old"
        summary += f", {'within' if ok else 'more than'} {human_duration(age)}"
        return CheckResult(
            self.label(),
            self.kind,
            ok,
            {"newest": newest.isoformat(), "age_seconds": lag.total_seconds()},
            expected,
            column=self.column,
            message="" if ok else summary,
            summary=summary,
        )


class Distribution(_Base):
    """The column's distribution matches a reference dataset version's.

    ``method="psi"``: fails when PSI > ``threshold`` (default 0.2); numbers are binned at
    the reference's quantiles (``bins``, deciles by default), anything else by category
    (each distinct value, null included, one bin). ``method="ks"`` (numbers only): fails
    when the two-sample KS p-value < ``threshold`` (default 0.01). Samples of up to
    200,000 rows per side are used for numbers; categories are counted in full. The
    statistics, their binning and their empty-bin floor are
    :mod:`milepost.monitoring.stats`'s.
    """

    kind: Literal["distribution"] = "distribution"
    column: str
    reference: str
    method: Literal["psi", "ks"] = "psi"
    threshold: float | None = Field(default=None, gt=0)
    bins: int = Field(default=10, ge=2, le=100)

    def default_name(self) -> str:
        return f"{self.column} distribution vs {self.reference}"

    def evaluate(self, ctx: CheckContext) -> CheckResult:
        _need_column(ctx, self.column)
        ref = ctx.reference(self.reference)
        c = quote(self.column)
        field_type = ctx.schema.field(self.column).type
        numeric = (
            pa.types.is_integer(field_type)
            or pa.types.is_floating(field_type)
            or pa.types.is_decimal(field_type)
        )
        if self.method == "ks" and not numeric:
            raise InvalidInput(f"Check {self.label()!r}: the KS test needs a numeric column.")
        if numeric:

            def sample(rel: str) -> Any:
                return ctx.con.execute(
                    f"SELECT CAST({c} AS DOUBLE) AS v FROM {rel} WHERE {c} IS NOT NULL "
                    f"USING SAMPLE reservoir({_SAMPLE_ROWS} ROWS) REPEATABLE (7)"
                ).fetchnumpy()["v"]

            ref_values, cur_values = sample(ref), sample("data")
            if len(ref_values) == 0 or len(cur_values) == 0:
                raise InvalidInput(f"Check {self.label()!r}: no values to compare.")
            if self.method == "ks":
                res = ks_test(ref_values, cur_values)
                threshold = self.threshold or 0.01
                ok = res.pvalue >= threshold
                p = _compared(res.pvalue, threshold, "g")
                summary = (
                    f"{self.column} distribution vs {self.reference}: KS {res.statistic:.3f}, "
                    f"p-value {p} {'>=' if ok else '<'} {threshold:g}"
                )
                return CheckResult(
                    self.label(),
                    self.kind,
                    ok,
                    {"ks_statistic": round(res.statistic, 6), "pvalue": res.pvalue},
                    f"KS p-value >= {threshold:g}",
                    column=self.column,
                    message="" if ok else summary,
                    summary=summary,
                )
            value = psi_from_samples(ref_values, cur_values, self.bins)
        else:

            def categories(rel: str) -> dict[str | None, int]:
                rows = ctx.con.execute(
                    f"SELECT CAST({c} AS VARCHAR), count(*) FROM {rel} GROUP BY 1"
                ).fetchall()
                return {v: int(n) for v, n in rows}

            ref_counts, cur_counts = categories(ref), categories("data")
            if not ref_counts or not cur_counts:
                raise InvalidInput(f"Check {self.label()!r}: no values to compare.")
            value = psi_categorical(ref_counts, cur_counts)
        threshold = self.threshold or 0.2
        ok = value <= threshold
        summary = (
            f"{self.column} distribution vs {self.reference}: "
            f"PSI {_compared(value, threshold, 'f')} {'<=' if ok else '>'} {threshold:g}"
        )
        return CheckResult(
            self.label(),
            self.kind,
            ok,
            {"psi": round(value, 6)},
            f"PSI <= {threshold:g}",
            column=self.column,
            message="" if ok else summary,
            summary=summary,
        )


def _compared(value: float, threshold: float, style: str) -> str:
    """``value`` with the fewest digits (3 at least) that keep its side of ``threshold``."""
    for digits in range(3, 10):
        text = f"{value:.{digits}{style}}"
        if (float(text) <= threshold) == (value <= threshold) and (
            (float(text) < threshold) == (value < threshold)
        ):
            return text
    return repr(value)


class Schema(_Base):
    """Columns exist with the given types; ``exact`` also forbids other columns.

    Types: ``integer``, ``float``, ``numeric``, ``string``, ``bool``, ``timestamp``,
    ``date``, ``any``, or an exact Arrow type such as ``int32``. ``nullable: false``
    lists columns that must not be declared nullable *and* must hold no nulls.
    """

    kind: Literal["schema"] = "schema"
    columns: dict[str, str]
    exact: bool = False
    non_nullable: list[str] = Field(default_factory=list)

    def default_name(self) -> str:
        return "schema"

    def evaluate(self, ctx: CheckContext) -> CheckResult:
        problems: list[str] = []
        actual = {f.name: f.type for f in ctx.schema}
        for name, wanted in self.columns.items():
            if name not in actual:
                from milepost.errors import did_you_mean

                problems.append(f"missing column {name!r}{did_you_mean(name, actual)}")
            elif not _type_matches(actual[name], wanted):
                problems.append(f"column {name!r} is {actual[name]}, expected {wanted}")
        if self.exact:
            extra = [n for n in actual if n not in self.columns]
            if extra:
                problems.append(f"unexpected columns {extra}")
        for name in self.non_nullable:
            if name in actual:
                nulls = ctx.con.execute(
                    f"SELECT count(*) FROM data WHERE {quote(name)} IS NULL"
                ).fetchall()[0][0]
                if nulls:
                    problems.append(f"column {name!r} has {nulls} nulls")
        declared = count(len(self.columns), "column")
        return CheckResult(
            self.label(),
            self.kind,
            not problems,
            {n: str(t) for n, t in actual.items()},
            ", ".join(f"{k}: {v}" for k, v in self.columns.items())
            + (" (exact)" if self.exact else ""),
            message="; ".join(problems),
            summary="; ".join(problems)
            or f"{declared} as declared" + (", no others" if self.exact else ""),
        )


_FAMILIES: dict[str, Callable[[pa.DataType], bool]] = {
    "integer": pa.types.is_integer,
    "float": pa.types.is_floating,
    "numeric": lambda t: (
        pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)
    ),
    "string": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t),
    "bool": pa.types.is_boolean,
    "timestamp": pa.types.is_timestamp,
    "date": pa.types.is_date,
    "any": lambda t: True,
}


def _type_matches(actual: pa.DataType, wanted: str) -> bool:
    if pa.types.is_dictionary(actual):
        actual = actual.value_type
    check = _FAMILIES.get(wanted)
    return check(actual) if check else str(actual) == wanted


Check = Annotated[
    NotNull
    | Between
    | InSet
    | Matches
    | Expression
    | Unique
    | RowCount
    | Freshness
    | Distribution
    | Schema,
    Field(discriminator="kind"),
]
_CHECK = TypeAdapter(Check)


class Suite(BaseModel):
    """A named list of checks; build it in Python or load it from YAML."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, AfterValidator(check.safe_chars)] = Field(min_length=1, max_length=256)
    checks: list[Check] = Field(min_length=1)
    description: str | None = None

    @classmethod
    def from_yaml(cls, source: str | Path) -> Suite:
        """Load from a YAML file path or YAML text.

        Raises:
            InvalidInput: unreadable YAML or an invalid check (naming which).
        """
        import yaml

        text = source.read_text() if isinstance(source, Path) else source
        if isinstance(source, str) and "\n" not in source and source.endswith((".yml", ".yaml")):
            path = Path(source)
            if not path.is_file():
                raise InvalidInput(f"Suite file {source} does not exist.")
            text = path.read_text()
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidInput(f"The suite is not valid YAML: {exc}") from exc
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Any) -> Suite:
        """Build from plain data (what YAML or JSON gives)."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise InvalidInput(
                f"Invalid suite at {where or 'top level'}: {first['msg']}.",
                hint="Each check needs a 'kind' (schema, not_null, between, in_set, matches, "
                "expression, unique, row_count, freshness, distribution) and its fields.",
            ) from exc

    def __repr__(self) -> str:
        kinds = ", ".join(c.kind for c in self.checks)
        return f"Suite({self.name!r}, {count(len(self.checks), 'check')}: {kinds})"

    def to_dict(self) -> dict[str, Any]:
        """The suite as plain data (loadable with :meth:`from_dict`)."""
        return self.model_dump(mode="json", exclude_none=True)

    def to_yaml(self) -> str:
        """The suite as YAML (loadable with :meth:`from_yaml`)."""
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def fingerprint(self) -> str:
        """A hash of the suite's content, stored with each result."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()


def check_from_dict(data: dict[str, Any]) -> Any:
    """One check from plain data."""
    return _CHECK.validate_python(data)


def run_checks(checks: Sequence[Any], ctx: CheckContext) -> list[CheckResult]:
    """Run every check; an error in one check's definition stops with InvalidInput."""
    return [check.run(ctx) for check in checks]
