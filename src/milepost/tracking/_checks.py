"""The argument checks of tracking, shared by the embedded service and its remote twin.

:class:`~milepost.tracking.TrackingService` and
:class:`~milepost.client.tracking.RemoteTracking` call these same functions, so a bad
argument is refused with the same words in both modes (remotely before any request).
"""

from __future__ import annotations

import numbers
import re
import time
from collections.abc import Mapping
from typing import Any

from milepost import _validate as check
from milepost.errors import InvalidInput
from milepost.tracking._values import int64, metric_value, short_repr
from milepost.tracking.models import RunStatus

__all__ = [
    "MAX_RESULTS",
    "end_args",
    "experiment_name",
    "experiment_ref",
    "experiment_refs",
    "metric_batch",
    "params",
    "run_ids",
    "search_args",
    "start_args",
    "status",
    "storable",
    "validate_key",
    "values",
]

_KEY = re.compile(r"^[\w\-. /:]+$")
_MAX_KEY = 250
_MAX_PARAM_VALUE = 6000
MAX_RESULTS = 50_000  # the largest page of search_runs

_run_id = check.run_id


def validate_key(key: Any, what: str) -> str:
    """A param, metric or tag name: 1-250 of letters, digits, ``_ - . / :`` and space."""
    bad = check.unsafe_char(key) if isinstance(key, str) else None
    if bad is not None:
        raise InvalidInput(
            f"Invalid {what} name {key!r}: it contains {bad}.",
            hint="For example 'val/loss' or 'learning_rate'.",
        )
    if not isinstance(key, str) or not key or len(key) > _MAX_KEY or not _KEY.match(key):
        raise InvalidInput(
            f"Invalid {what} name {key!r}: use 1-{_MAX_KEY} letters, digits, "
            "'_', '-', '.', '/', ':' or spaces.",
            hint="For example 'val/loss' or 'learning_rate'.",
        )
    if key != key.strip() or "//" in key or key.startswith("/"):
        raise InvalidInput(
            f"Invalid {what} name {key!r}: no leading or trailing spaces or slashes, and no '//'."
        )
    return key


def experiment_ref(ref: Any) -> str | int:
    """An experiment's name (str) or id (int), checked."""
    if isinstance(ref, str):
        return check.name(ref, "Experiment name or id")
    if isinstance(ref, numbers.Integral) and not isinstance(ref, bool):
        return check.integer(ref, "Experiment id", minimum=0)
    raise InvalidInput(
        f"An experiment is given by its name (str) or id (int), got {short_repr(ref)} "
        f"({type(ref).__name__})."
    )


def experiment_refs(experiments: Any) -> list[str | int]:
    """One experiment reference, or a list or tuple of them, checked (as a list)."""
    refs = experiments if isinstance(experiments, (list, tuple)) else [experiments]
    return [experiment_ref(r) for r in refs]


def experiment_name(value: Any) -> str:
    """A new experiment's name: a name without leading or trailing spaces."""
    name = check.name(value, "Experiment name")
    if not name.strip() or name != name.strip():
        raise InvalidInput(
            f"Experiment name {name!r} is invalid: use 1-256 characters without leading or "
            "trailing spaces."
        )
    return name


def values(items: Any, what: str) -> dict[str, str]:
    """Tags or params as ``{key: text}``: checked keys, values that can be stored."""
    clean: dict[str, str] = {}
    for k, v in check.mapping(items, f"{what}s").items():
        key = validate_key(k, what)
        clean[key] = check.text(str(v), f"The value of {what} {key!r}")
    return clean


def params(items: Any) -> dict[str, str]:
    """Params as ``{key: text}``, each value within the length a param may have."""
    clean = values(items, "param")
    for k, text in clean.items():
        if len(text) > _MAX_PARAM_VALUE:
            raise InvalidInput(
                f"Param {k!r} is {len(text)} characters; the limit is {_MAX_PARAM_VALUE}.",
                hint="Log long values as an artifact (log_text or log_dict).",
            )
    return clean


def status(value: RunStatus | str) -> RunStatus:
    """A run status by value or name, any case."""
    try:
        return RunStatus(str(value).upper())
    except ValueError:
        raise InvalidInput(
            f"Unknown run status {value!r}: use RUNNING, FINISHED, FAILED or KILLED."
        ) from None


def storable(text: str | None) -> str | None:
    """A run's error text made storable: a traceback may quote any text at all."""
    if text is None:
        return None
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def start_args(
    experiment: Any, run_name: Any, tags: Any, parent_run_id: Any
) -> tuple[str | int | None, dict[str, str]]:
    """``start_run``'s arguments checked: the experiment (None: the default) and the
    run's tags, a pipeline step's default tags under the given ones."""
    if run_name is not None:
        check.name(run_name, "Run name")
    clean_tags = values(tags, "tag") if tags is not None else {}
    from milepost.tracking import _active  # imports the service, which imports this

    defaults = _active.default_tags()  # a pipeline step's tags, when inside one
    if defaults:
        clean_tags = {**defaults, **clean_tags}
    if parent_run_id is not None:
        _run_id(parent_run_id, "parent run id")
    return (None if experiment is None else experiment_ref(experiment)), clean_tags


def end_args(run_id: Any, target: RunStatus | str, error: Any) -> RunStatus:
    """``end_run``'s arguments checked: the terminal status to give the run."""
    checked = status(target)
    if checked is RunStatus.RUNNING:
        raise InvalidInput("end_run needs a terminal status: FINISHED, FAILED or KILLED.")
    _run_id(run_id)
    if error is not None and not isinstance(error, str):
        raise InvalidInput(f"A run's error is text, got {type(error).__name__}.")
    return checked


def search_args(
    max_results: Any, include_deleted: Any, filter: Any, order_by: Any, page_token: Any
) -> list[str] | None:
    """``search_runs``' arguments checked (the filter is parsed where it runs); returns
    the order terms as a list."""
    check.integer(max_results, "max_results", minimum=1, maximum=MAX_RESULTS)
    check.boolean(include_deleted, "include_deleted")
    if filter is not None and not isinstance(filter, str):
        raise InvalidInput(f"filter must be a string, got {short_repr(filter)}.")
    orders = None if order_by is None else check.string_list(order_by, "order_by", allow_str=True)
    if page_token is not None:
        check.text(page_token, "page_token")
    return orders


def run_ids(ids: Any) -> list[str] | None:
    """A list of run ids, each checked (None stays None)."""
    if ids is None:
        return None
    check.string_list(ids, "run_ids")
    return [_run_id(r) for r in ids]


def metric_batch(
    values: Any, step: Any, timestamp: Any, keys_ok: set[str]
) -> tuple[list[tuple[str, float]], int, int]:
    """``log_metrics``' values checked: ``([(key, value)], timestamp, step)``.

    ``keys_ok`` holds the names already checked (names checked here are added).
    """
    if not isinstance(values, Mapping):
        raise InvalidInput(
            "log_metrics takes a mapping of metric names to values, got "
            f"{short_repr(values)} ({type(values).__name__})."
        )
    ts = int(time.time() * 1000) if timestamp is None else int64("timestamp", timestamp)
    st = 0 if step is None else int64("step", step)
    pairs = []
    for key, value in values.items():
        if type(key) is not str or key not in keys_ok:
            validate_key(key, "metric")
            keys_ok.add(key)
        pairs.append((key, metric_value(key, value)))
    return pairs, ts, st
