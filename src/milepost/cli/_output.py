"""Rendering helpers shared by the commands: tables, JSON and times.

Tables are built to read at 80 columns: :func:`fit_table` keeps every value whole (ids,
numbers, times and names never wrap or break mid-token), lets only free-text columns
wrap between words (never inside one that fits), and leaves out optional columns, last
first, when they do not fit (if even then they do not, long words in free text fold
before any value is cut). They have a rule under the header and no vertical rules, so
the columns get the width.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.table import Column, Table
from rich.text import Text

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

#: The narrowest a free-text column gets before optional columns are left out.
MIN_TEXT_WIDTH = 12
#: Words up to this long are never split in a free-text column; longer ones may fold.
MAX_WHOLE_WORD = 24


def emit_json(data: Any) -> None:
    """Write JSON to stdout (for ``--json``)."""
    typer.echo(json.dumps(data, indent=2, default=str, allow_nan=False))


def fmt_time(ms: int | None) -> str:
    """A compact UTC timestamp."""
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def fmt_value(value: Any) -> str:
    """Numbers with up to 6 significant digits, others as text."""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


#: A rule under the header, no vertical rules: the columns get the width.
_STYLE: dict[str, Any] = {"box": box.SIMPLE_HEAD, "show_edge": False, "pad_edge": False}


@dataclass(frozen=True)
class Col:
    """A column of :func:`fit_table`.

    Attributes:
        header: the heading.
        wrap: free text (a reason, a description) that may wrap between words; other
            columns keep each value on one line.
        justify: ``left`` or ``right`` (numbers).
    """

    header: str
    wrap: bool = False
    justify: str = "left"


def _cell_width(value: str) -> int:
    return max((Text.from_markup(line).cell_len for line in value.split("\n")), default=0)


def _natural(col: Col, i: int, rows: Sequence[Sequence[str]]) -> int:
    return max([_cell_width(col.header)] + [_cell_width(r[i]) for r in rows])


def _longest_word(col: Col, i: int, rows: Sequence[Sequence[str]]) -> int:
    texts = [col.header, *(r[i] for r in rows)]
    return max((_cell_width(w) for t in texts for w in t.split()), default=0)


def _minimum(col: Col, i: int, rows: Sequence[Sequence[str]], *, squeeze: bool = False) -> int:
    """Whole values; free text down to its longest word (to MIN_TEXT_WIDTH when that word
    is longer than MAX_WHOLE_WORD, or when ``squeeze`` says nothing else fits)."""
    natural = _natural(col, i, rows)
    if not col.wrap:
        return natural
    word = _longest_word(col, i, rows)
    return min(natural, max(MIN_TEXT_WIDTH, word if word <= MAX_WHOLE_WORD and not squeeze else 0))


def _needed(cols: Sequence[Col], rows: Sequence[Sequence[str]], *, squeeze: bool = False) -> int:
    """The width the table needs: minimum column widths plus three spaces between columns."""
    widths = (_minimum(c, i, rows, squeeze=squeeze) for i, c in enumerate(cols))
    return sum(widths) + 3 * (len(cols) - 1)


def fit_table(
    columns: Sequence[Col | str],
    rows: Sequence[Sequence[str]],
    *,
    optional: int = 0,
    width: int | None = None,
    styles: Sequence[str | None] | None = None,
    **kwargs: Any,
) -> tuple[Table, int]:
    """A table that reads at ``width`` (default the console's), and how many of the
    ``optional`` last columns were left out to make it fit.

    Args:
        columns: headings (plain strings keep values whole) or :class:`Col`.
        rows: cell texts (Rich markup allowed), one list per row, one cell per column.
        optional: how many of the last columns may be left out, last first.
        width: the terminal width to fit.
        styles: a Rich style per row (None for none).
        **kwargs: more :class:`rich.table.Table` options (``title``, ...).
    """
    cols = [c if isinstance(c, Col) else Col(c) for c in columns]
    width = width or console.width
    keep = len(cols)
    while keep > len(cols) - optional and _needed(cols[:keep], rows) > width:
        keep -= 1
    # still too wide: long words in free text fold rather than values being cut
    squeeze = _needed(cols[:keep], rows) > width
    table = Table(
        *(
            Column(
                c.header,
                justify=c.justify,  # type: ignore[arg-type]
                no_wrap=not c.wrap,
                overflow="fold" if c.wrap else "ellipsis",
                min_width=_minimum(c, i, rows, squeeze=squeeze),
            )
            for i, c in enumerate(cols[:keep])
        ),
        **(_STYLE | kwargs),
    )
    for i, row in enumerate(rows):
        table.add_row(*row[:keep], style=styles[i] if styles else None)
    return table, len(cols) - keep


STATUS_STYLE = {
    "RUNNING": "cyan",
    "FINISHED": "green",
    "FAILED": "red",
    "KILLED": "yellow",
}
