"""The search filter language, parsed into a small AST (never concatenated into SQL).

Grammar::

    filter     := comparison ( AND comparison )*
    comparison := field op value
                | field [NOT] IN "(" value ( "," value )* ")"
                | field [NOT] LIKE string | field ILIKE string
    field      := metrics.KEY | params.KEY | tags.KEY | [attributes.]NAME
    op         := = | != | < | <= | > | >=
    value      := number | 'string' | "string"

KEY is a word (letters, digits, ``_ - . / :``) or a quoted name: ``metrics.`val loss```.
Attributes: run_id, run_name, status, user, parent_run_id, git_commit, source (strings);
start_time, end_time (ms since the epoch), experiment_id (numbers).
Metrics compare as numbers with = != < <= > >= and IN; params and tags are strings and
take = != LIKE ILIKE IN. Keywords are case-insensitive. In a LIKE pattern ``%`` and ``_``
are wildcards and a backslash escapes them on every backend; inside a quoted string a
backslash is itself escaped, so ``params.share LIKE '50\\\\%'`` matches ``50%``.

Order-by terms: ``FIELD [ASC|DESC]``, several separated by commas.

Limits, checked before any SQL is built (every backend can run a search within them;
SQLite joins at most 64 tables): at most ``MAX_CLAUSES`` (100) comparisons, ``MAX_VALUES``
(10,000) values in all, ``MAX_LENGTH`` (1,000,000) characters, and ``MAX_JOINED_KEYS`` (50)
different metrics, params and tags across the filter and the order. A NUL character or
text that is not valid Unicode is refused too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from milepost.errors import InvalidFilter, did_you_mean

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "MAX_CLAUSES",
    "MAX_JOINED_KEYS",
    "MAX_LENGTH",
    "MAX_VALUES",
    "Comparison",
    "OrderTerm",
    "check_search_size",
    "parse_filter",
    "parse_order_by",
]

MAX_CLAUSES = 100
MAX_VALUES = 10_000
MAX_LENGTH = 1_000_000
MAX_JOINED_KEYS = 50

Entity = Literal["metric", "param", "tag", "attribute"]
Value = float | str

STRING_ATTRIBUTES = {
    "run_id": "run_id",
    "run_name": "name",
    "status": "status",
    "user": "user",
    "parent_run_id": "parent_run_id",
    "git_commit": "git_commit",
    "source": "source",
}
NUMERIC_ATTRIBUTES = {
    "start_time": "start_time",
    "end_time": "end_time",
    "experiment_id": "experiment_id",
}
ATTRIBUTE_ALIASES = {"name": "run_name", "created": "start_time", "id": "run_id"}
_PREFIXES: dict[str, Entity] = {
    "metrics": "metric",
    "metric": "metric",
    "params": "param",
    "param": "param",
    "tags": "tag",
    "tag": "tag",
    "attributes": "attribute",
    "attribute": "attribute",
    "attr": "attribute",
}
_NUMERIC_OPS = ("=", "!=", "<", "<=", ">", ">=")
_STRING_OPS = ("=", "!=", "LIKE", "ILIKE", "NOT LIKE")


@dataclass(frozen=True)
class Comparison:
    """``entity.key op value``; ``value`` is a tuple for IN / NOT IN."""

    entity: Entity
    key: str
    op: str
    value: Value | tuple[Value, ...]
    position: int


@dataclass(frozen=True)
class OrderTerm:
    """One ordering term."""

    entity: Entity
    key: str
    descending: bool


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")
  | (?P<field>(?:metrics|metric|params|param|tags|tag|attributes|attribute|attr)\.
        (?:`[^`]+`|"[^"]+"|[\w.\-:/]+))
  | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
  | (?P<op>!=|<>|<=|>=|==|=|<|>)
  | (?P<punct>[(),])
  | (?P<word>[A-Za-z_][\w.]*)
    """,
    re.VERBOSE | re.IGNORECASE,
)


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    pos: int


def _fail(source: str, pos: int, text: str, expected: str) -> InvalidFilter:
    near = f"near {text!r}" if text else "at the end"
    return InvalidFilter(
        f"Invalid filter at character {pos + 1} {near}: {expected}. Filter: {source}",
        hint="Example: metrics.accuracy > 0.9 AND params.model = 'gbm'.",
        details={"position": pos, "token": text, "filter": source},
    )


def _tokenize(source: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while pos < len(source):
        m = _TOKEN.match(source, pos)
        if not m:
            raise _fail(source, pos, source[pos : pos + 10], "unexpected character")
        kind = m.lastgroup or ""
        if kind != "ws":
            tokens.append(_Tok(kind, m.group(), pos))
        pos = m.end()
    return tokens


def _unquote(text: str) -> str:
    quote = text[0]
    body = text[1:-1]
    body = body.replace(quote * 2, quote)
    return re.sub(r"\\(.)", r"\1", body)


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = _tokenize(source)
        self.i = 0

    def peek(self) -> _Tok | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> _Tok | None:
        tok = self.peek()
        self.i += 1
        return tok

    def error(self, tok: _Tok | None, expected: str) -> InvalidFilter:
        if tok is None:
            return _fail(self.source, len(self.source), "", expected)
        return _fail(self.source, tok.pos, tok.text, expected)

    def keyword(self, tok: _Tok | None, *words: str) -> bool:
        return tok is not None and tok.kind == "word" and tok.text.upper() in words

    def parse_field(self) -> tuple[Entity, str, _Tok]:
        tok = self.take()
        if tok is None or tok.kind not in ("field", "word"):
            raise self.error(tok, "expected a field such as metrics.x, params.x, tags.x or status")
        if self.keyword(tok, "AND", "OR", "IN", "NOT", "LIKE", "ILIKE"):
            raise self.error(tok, "expected a field, found a keyword")
        return (*parse_field_name(tok.text, self.source, tok.pos), tok)

    def parse_value(self) -> Value:
        tok = self.take()
        if tok is not None and tok.kind == "string":
            return _unquote(tok.text)
        if tok is not None and tok.kind == "number":
            return float(tok.text)
        raise self.error(tok, "expected a value: a number or a quoted string")

    def parse_comparison(self) -> Comparison:
        entity, key, field_tok = self.parse_field()
        tok = self.take()
        negate = False
        if self.keyword(tok, "NOT"):
            negate = True
            tok = self.take()
            if not self.keyword(tok, "IN", "LIKE"):
                raise self.error(tok, "expected IN or LIKE after NOT")
        if tok is not None and tok.kind == "op":
            op = {"<>": "!=", "==": "="}.get(tok.text, tok.text)
            value: Value | tuple[Value, ...] = self.parse_value()
        elif self.keyword(tok, "IN"):
            assert tok is not None
            op = "NOT IN" if negate else "IN"
            value = self.parse_list()
        elif self.keyword(tok, "LIKE", "ILIKE"):
            assert tok is not None
            op = ("NOT " if negate else "") + tok.text.upper()
            value = self.parse_value()
            if not isinstance(value, str):
                raise self.error(self.tokens[self.i - 1], f"{op} needs a quoted pattern")
            if (len(value) - len(value.rstrip("\\"))) % 2:
                raise self.error(
                    self.tokens[self.i - 1],
                    f"a {op} pattern cannot end with the escape character '\\' "
                    "(write '\\\\\\\\' in the quotes for a literal backslash)",
                )
        else:
            raise self.error(tok, "expected an operator: = != < <= > >= LIKE ILIKE IN")
        comparison = Comparison(entity, key, op, value, field_tok.pos)
        _check_types(comparison, self.source, tok)
        return comparison

    def parse_list(self) -> tuple[Value, ...]:
        tok = self.take()
        if tok is None or tok.text != "(":
            raise self.error(tok, "expected '(' to start the IN list")
        values = [self.parse_value()]
        while True:
            tok = self.take()
            if tok is not None and tok.text == ",":
                values.append(self.parse_value())
            elif tok is not None and tok.text == ")":
                return tuple(values)
            else:
                raise self.error(tok, "expected ',' or ')' in the IN list")

    def parse(self) -> list[Comparison]:
        comparisons = [self.parse_comparison()]
        values = _count_values(comparisons[-1])
        while (tok := self.take()) is not None:
            if self.keyword(tok, "OR"):
                raise self.error(
                    tok, "OR is not supported; run one search per alternative or use IN"
                )
            if not self.keyword(tok, "AND"):
                raise self.error(tok, "expected AND between comparisons")
            comparisons.append(self.parse_comparison())
            values += _count_values(comparisons[-1])
        if len(comparisons) > MAX_CLAUSES:
            raise _too_large(
                f"it has {len(comparisons)} comparisons; at most {MAX_CLAUSES} are allowed",
                MAX_CLAUSES,
            )
        if values > MAX_VALUES:
            raise _too_large(
                f"it compares with {values} values; at most {MAX_VALUES} are allowed",
                MAX_VALUES,
            )
        return comparisons


def _count_values(c: Comparison) -> int:
    return len(c.value) if isinstance(c.value, tuple) else 1


def _too_large(why: str, limit: int) -> InvalidFilter:
    return InvalidFilter(
        f"The filter is too large: {why}.",
        hint="Narrow the search (for example one experiment, or IN instead of many "
        "comparisons) and filter the rest in Python.",
        details={"limit": limit},
    )


def parse_field_name(text: str, source: str, pos: int) -> tuple[Entity, str]:
    """Split ``metrics.acc`` into ``("metric", "acc")``; a bare word is an attribute."""
    prefix, dot, rest = text.partition(".")
    entity = _PREFIXES.get(prefix.lower()) if dot else None
    if entity is None:
        entity, rest = "attribute", text
    if rest[:1] in ("`", '"') and rest[-1:] == rest[:1] and len(rest) >= 2:
        rest = rest[1:-1]
    if entity == "attribute":
        name = ATTRIBUTE_ALIASES.get(rest.lower(), rest.lower())
        known = set(STRING_ATTRIBUTES) | set(NUMERIC_ATTRIBUTES)
        if name not in known:
            raise _fail(
                source,
                pos,
                text,
                f"unknown attribute {rest!r}{did_you_mean(rest, known)} "
                "(prefix metrics., params. or tags. for logged values)".replace("?.", "?"),
            )
        return entity, name
    if not rest:
        raise _fail(source, pos, text, "expected a key after the prefix")
    return entity, rest


def _check_types(c: Comparison, source: str, op_tok: _Tok | None) -> None:
    pos = op_tok.pos if op_tok else c.position
    text = op_tok.text if op_tok else ""
    values = c.value if isinstance(c.value, tuple) else (c.value,)
    numeric = c.entity == "metric" or (c.entity == "attribute" and c.key in NUMERIC_ATTRIBUTES)
    base_op = c.op.removeprefix("NOT ")
    if numeric:
        if base_op in ("LIKE", "ILIKE"):
            raise _fail(
                source, pos, text, f"{c.op} compares text; {c.entity} {c.key!r} is a number"
            )
        if any(isinstance(v, str) for v in values):
            raise _fail(
                source, pos, text, f"{c.entity} {c.key!r} is a number; compare it with a number"
            )
    else:
        if base_op in ("<", "<=", ">", ">="):
            raise _fail(
                source,
                pos,
                text,
                f"{c.entity} {c.key!r} is text and takes = != LIKE ILIKE IN; "
                "log numbers you want to compare as metrics",
            )
        if any(not isinstance(v, str) for v in values):
            raise _fail(source, pos, text, f"{c.entity} {c.key!r} is text; quote the value")
        if c.entity == "attribute" and c.key == "status" and base_op in ("=", "!=", "IN"):
            allowed = {"RUNNING", "FINISHED", "FAILED", "KILLED"}
            for v in values:
                if str(v).upper() not in allowed:
                    raise _fail(
                        source,
                        pos,
                        text,
                        f"status {v!r} is not one of {', '.join(sorted(allowed))}",
                    )


def parse_filter(source: str | None) -> list[Comparison]:
    """Parse a filter string; empty or ``None`` gives no comparisons.

    Raises:
        InvalidFilter: with the character position and the offending token.
    """
    if source is None:
        return []
    if not isinstance(source, str):
        raise InvalidFilter(
            f'A filter is a string such as "metrics.acc > 0.9", got {source!r:.60} '
            f"({type(source).__name__})."
        )
    if len(source) > MAX_LENGTH:
        raise _too_large(
            f"it is {len(source)} characters long; at most {MAX_LENGTH} are allowed", MAX_LENGTH
        )
    _check_text(source, "filter")
    if not source.strip():
        return []
    return _Parser(source).parse()


def _check_text(text: str, what: str) -> None:
    """Refuse what no database stores: NUL, and text that is not valid Unicode."""
    if "\x00" in text:
        raise InvalidFilter(
            f"The {what} contains a NUL character at position {text.index(chr(0)) + 1}.",
            details={"position": text.index("\x00")},
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidFilter(
            f"The {what} is not valid Unicode text (a lone surrogate at position {exc.start + 1}).",
            details={"position": exc.start},
        ) from None


def check_search_size(comparisons: Sequence[Comparison], order: Sequence[OrderTerm]) -> None:
    """Refuse a search that joins more than ``MAX_JOINED_KEYS`` metric/param/tag keys.

    Raises:
        InvalidFilter: too many different keys across the filter and the order.
    """
    keys = {(c.entity, c.key) for c in comparisons if c.entity != "attribute"}
    keys |= {(t.entity, t.key) for t in order if t.entity != "attribute"}
    if len(keys) > MAX_JOINED_KEYS:
        raise _too_large(
            f"it uses {len(keys)} different metrics, params and tags (filter and order "
            f"together); at most {MAX_JOINED_KEYS} are allowed",
            MAX_JOINED_KEYS,
        )


def parse_order_by(terms: str | Sequence[str] | None) -> list[OrderTerm]:
    """Parse ``["metrics.acc DESC", "start_time"]`` or ``"metrics.acc DESC, start_time"``."""
    if terms is None or (isinstance(terms, (str, list, tuple)) and not terms):
        return []
    if not isinstance(terms, (str, list, tuple)):
        raise InvalidFilter(
            f"order_by is a string or a list of strings such as ['metrics.acc DESC'], "
            f"got {terms!r:.60} ({type(terms).__name__})."
        )
    items = terms.split(",") if isinstance(terms, str) else list(terms)
    if len(items) > MAX_CLAUSES:
        raise _too_large(f"order_by has {len(items)} terms; at most {MAX_CLAUSES}", MAX_CLAUSES)
    result: list[OrderTerm] = []
    for raw in items:
        if not isinstance(raw, str):
            raise InvalidFilter(f"Each order_by term is a string, got {raw!r:.60}.")
        _check_text(raw, "order_by term")
        text = raw.strip()
        descending = False
        upper = text.upper()
        if upper.endswith(" DESC"):
            descending, text = True, text[:-5].strip()
        elif upper.endswith(" ASC"):
            text = text[:-4].strip()
        m = _TOKEN.fullmatch(text)
        if m is None or m.lastgroup not in ("field", "word"):
            raise InvalidFilter(
                f"Invalid order_by term {raw!r}: expected FIELD [ASC|DESC].",
                hint="Example: metrics.accuracy DESC.",
                details={"token": raw},
            )
        entity, key = parse_field_name(text, raw, 0)
        result.append(OrderTerm(entity, key, descending))
    return result
