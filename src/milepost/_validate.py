"""Checks for the arguments users give, shared by every service entry point.

One rule per kind of value, so the Python API, the CLI and the HTTP server refuse the
same things with the same words:

- a **name** (experiment, run, dataset, model, alias, view, endpoint, role, actor, key)
  is a ``str``, not empty, at most a stated length, without control characters (C0, DEL,
  C1, the Unicode line and paragraph separators and the bidirectional overrides) and
  without lone surrogates (text that cannot be encoded as UTF-8). A kind may add its own
  alphabet on top (``pattern``).
- **free text** (a description, a reason, a tag or param value) may hold newlines and
  tabs but no NUL and no lone surrogates: neither can be stored.
- an **integer** (an id, a version, a count) is an ``int`` (numpy integers included,
  ``bool`` refused) within a stated range, by default a signed 64-bit integer, the
  database's BIGINT.
- a **path** is a ``str`` or ``os.PathLike`` that the file system can encode.

Every refusal is an :class:`~milepost.errors.InvalidInput` naming the argument, showing
the offending value (shortened) and saying what is accepted.
"""

from __future__ import annotations

import numbers
import os
import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from milepost.errors import InvalidInput

if TYPE_CHECKING:
    from collections.abc import Collection

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "boolean",
    "choice",
    "integer",
    "local_path",
    "mapping",
    "name",
    "optional_text",
    "run_id",
    "safe_chars",
    "short_repr",
    "string",
    "string_list",
    "text",
    "timestamp_ms",
    "unique_columns",
    "unsafe_char",
]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

# C0 controls, DEL, C1 controls, line/paragraph separators, bidirectional embeddings,
# overrides and isolates (they reorder what a reader sees), and lone surrogates.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
# What free text may not hold: NUL (PostgreSQL refuses it) and lone surrogates.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def short_repr(value: Any, limit: int = 60) -> str:
    """``repr`` cut to ``limit`` characters (a 400-digit integer says how long it is)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**limit:
        return f"an integer of {len(str(abs(value)))} digits"
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ must not hide the real problem
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(ch: str) -> str:
    code = ord(ch)
    if 0xD800 <= code <= 0xDFFF:
        return f"a lone surrogate (U+{code:04X}), which is not valid Unicode text"
    if code == 0:
        return "a NUL character (U+0000)"
    return f"a control character (U+{code:04X})"


def unsafe_char(value: str) -> str | None:
    """What makes ``value`` unusable as a name (a control character...), or None."""
    m = _UNSAFE.search(value)
    return _describe(m.group()) if m else None


def safe_chars(value: str) -> str:
    """``value`` unchanged, or ValueError naming its unsafe character.

    For a pydantic ``AfterValidator`` on a model's name field, so names declared in
    YAML or built in Python follow the rule of every other name.
    """
    bad = unsafe_char(value)
    if bad is not None:
        raise ValueError(f"it contains {bad}")
    return value


def _type_error(what: str, expected: str, value: Any) -> InvalidInput:
    return InvalidInput(
        f"{what} must be {expected}, got {short_repr(value)} ({type(value).__name__})."
    )


def name(
    value: Any,
    what: str,
    *,
    max_length: int = 256,
    pattern: re.Pattern[str] | None = None,
    rule: str | None = None,
    hint: str | None = None,
) -> str:
    """A user-given name, or InvalidInput saying what is wrong with it.

    Args:
        value: the name as given.
        what: what it names, for the message (``"Model name"``).
        max_length: the most characters it may have.
        pattern: the kind's own alphabet, matched against the whole name.
        rule: the alphabet in words, said when ``pattern`` does not match.
        hint: an example or what to do.
    """
    if not isinstance(value, str):
        raise _type_error(what, "a string", value)
    return _checked_name(str(value), what, max_length, pattern, rule, hint)


def _checked_name(
    value: str,
    what: str,
    max_length: int,
    pattern: re.Pattern[str] | None,
    rule: str | None,
    hint: str | None,
) -> str:
    if not value:
        raise InvalidInput(f"{what} is empty.", hint=hint)
    if len(value) > max_length:
        raise InvalidInput(
            f"{what} {short_repr(value)} is {len(value)} characters long; the limit is "
            f"{max_length}.",
            hint=hint,
        )
    bad = unsafe_char(value)
    if bad is not None:
        raise InvalidInput(
            f"{what} {value!r} contains {bad}.",
            hint=hint or (rule[0].upper() + rule[1:] + "." if rule else None),
        )
    if pattern is not None and not pattern.fullmatch(value):
        raise InvalidInput(
            f"{what} {value!r} is invalid: {rule or 'see the documentation'}.", hint=hint
        )
    return value


def string(value: Any, what: str) -> str:
    """A ``str``, nothing else (what the text may hold is the caller's to check)."""
    if not isinstance(value, str):
        raise _type_error(what, "a string", value)
    return value


def text(value: Any, what: str, *, max_length: int | None = None) -> str:
    """Free text (a description, a reason): a string that can be stored."""
    if not isinstance(value, str):
        raise _type_error(what, "a string", value)
    if max_length is not None and len(value) > max_length:
        raise InvalidInput(
            f"{what} is {len(value)} characters long; the limit is {max_length}.",
        )
    m = _UNSTORABLE.search(value)
    if m is not None:
        raise InvalidInput(
            f"{what} {short_repr(value)} contains {_describe(m.group())}: it cannot be stored.",
            hint="Remove it; text must be valid Unicode without NUL characters.",
        )
    return value


def optional_text(value: Any, what: str, *, max_length: int | None = None) -> str | None:
    """Free text or ``None``."""
    return None if value is None else text(value, what, max_length=max_length)


def integer(value: Any, what: str, *, minimum: int = INT64_MIN, maximum: int = INT64_MAX) -> int:
    """A whole number within ``[minimum, maximum]`` (default: a signed 64-bit integer)."""
    if type(value) is int:
        number = value
    elif isinstance(value, numbers.Integral) and not isinstance(value, bool):
        number = int(value)
    else:
        raise _type_error(what, "an integer", value)
    if not minimum <= number <= maximum:
        if maximum == INT64_MAX and minimum in (0, 1):
            limits = f"at least {minimum} (and at most {INT64_MAX})"
        else:
            limits = f"from {minimum} to {maximum}"
        raise InvalidInput(f"{what} must be {limits}, got {short_repr(number)}.")
    return number


def boolean(value: Any, what: str) -> bool:
    """``True`` or ``False`` (numpy booleans included), nothing else."""
    kind = type(value)
    if kind is bool or (kind.__module__ == "numpy" and kind.__name__ in ("bool", "bool_")):
        return bool(value)
    raise _type_error(what, "True or False", value)


def choice(value: Any, what: str, choices: Collection[str]) -> str:
    """One of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise InvalidInput(
            f"{what} must be one of {', '.join(repr(c) for c in choices)}; got {short_repr(value)}."
        )
    return value


def mapping(value: Any, what: str) -> Mapping[Any, Any]:
    """A mapping (a dict), or InvalidInput."""
    if not isinstance(value, Mapping):
        raise _type_error(what, "a mapping (a dict)", value)
    return value


def string_list(value: Any, what: str, *, allow_str: bool = False) -> list[str]:
    """A list (or tuple) of strings; a single string too when ``allow_str``."""
    if isinstance(value, str):
        if allow_str:
            return [value]
        raise _type_error(what, "a list of strings", value)
    if not isinstance(value, (list, tuple)):
        raise _type_error(what, "a list of strings", value)
    for item in value:
        if not isinstance(item, str):
            raise InvalidInput(
                f"{what} must hold only strings; {short_repr(item)} is a {type(item).__name__}."
            )
    return list(value)


def local_path(
    value: Any,
    what: str,
    *,
    kind: Literal["file", "dir", "any", "new_dir"] = "any",
    hint: str | None = None,
) -> Path:
    """A local path the file system can take, checked against what it must be.

    ``kind``: ``"file"`` and ``"dir"`` must exist as such; ``"new_dir"`` may be missing
    (it will be created) but must not be a file; ``"any"`` is not checked on disk.
    """
    if not isinstance(value, (str, os.PathLike)):
        raise _type_error(what, "a path (str or os.PathLike)", value)
    raw = os.fspath(value)
    if not isinstance(raw, str):
        raise _type_error(what, "a text path", value)
    if not raw:
        raise InvalidInput(f"{what} is empty.")
    if "\x00" in raw:
        raise InvalidInput(f"{what} {short_repr(raw)} contains a NUL character.")
    try:
        os.fsencode(raw)
    except UnicodeEncodeError as exc:
        raise InvalidInput(
            f"{what} {short_repr(raw)} cannot be encoded for the file system ({exc.reason})."
        ) from None
    path = Path(raw)
    try:
        if kind == "file" and not path.is_file():
            why = "a directory" if path.is_dir() else "missing"
            raise InvalidInput(f"{what} {raw!r} is not a file: it is {why}.", hint=hint)
        if kind == "dir" and not path.is_dir():
            why = "a file" if path.exists() else "missing"
            raise InvalidInput(f"{what} {raw!r} is not a directory: it is {why}.", hint=hint)
        if kind == "new_dir":
            for candidate in (path, *path.parents):
                if candidate.exists():
                    if not candidate.is_dir():
                        raise InvalidInput(
                            f"{what} {raw!r}: {candidate} is a file, not a directory.",
                            hint=hint or "Give a directory (it is created when missing).",
                        )
                    break
    except OSError as exc:  # a name too long, a permission problem on the way
        raise InvalidInput(
            f"{what} {short_repr(raw)} cannot be used: {exc.strerror}.", hint=hint
        ) from None
    return path


def timestamp_ms(value: Any, what: str) -> int:
    """A moment as epoch milliseconds: an ``int`` (milliseconds) or an aware ``datetime``."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidInput(
                f"{what} {value.isoformat()} has no time zone.",
                hint="Pass an aware datetime, e.g. datetime(..., tzinfo=UTC), or epoch ms.",
            )
        try:
            return integer(round(value.timestamp() * 1000), what)
        except (OverflowError, ValueError) as exc:
            raise InvalidInput(f"{what} {value!r} is out of range: {exc}.") from None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return integer(value, what)
    raise _type_error(what, "an aware datetime or epoch milliseconds (int)", value)


def run_id(value: Any, what: str = "run id") -> str:
    """A run id: a string (an unknown one is the store's NotFound, not this check's)."""
    if type(value) is not str:
        raise InvalidInput(
            f"A {what} is a string of 32 hex characters, got {short_repr(value)} "
            f"({type(value).__name__}).",
            hint="Use run.run_id, or find ids with `milepost runs list`.",
        )
    return value


def unique_columns(data: Any, what: str) -> None:
    """Refuse a table (pandas, Polars, Arrow) whose column names repeat.

    Names are compared as text, the form they are stored and matched in, so ``0`` and
    ``"0"`` clash too. Anything without columns passes (other checks judge it).
    """
    names = getattr(data, "column_names", None)  # pyarrow
    if names is None:
        names = getattr(data, "columns", None)
    if names is None or isinstance(names, (str, bytes)):
        return
    try:
        texts = [str(n) for n in names]
    except TypeError:
        return
    if len(set(texts)) == len(texts):
        return
    seen: set[str] = set()
    repeated = sorted({t for t in texts if t in seen or seen.add(t)})  # type: ignore[func-returns-value]
    raise InvalidInput(
        f"{what} has duplicate column names: {', '.join(repr(t) for t in repeated)}.",
        hint="Give every column its own name (rename or drop the repeats).",
    )
