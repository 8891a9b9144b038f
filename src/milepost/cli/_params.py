"""Argument and option types shared by the commands, with their ranges.

A value out of range is a usage error (one line, exit 2) before any service is called.
"""

from __future__ import annotations

from typing import Annotated

import typer

#: Largest integer the metadata stores hold (a signed 64-bit column).
MAX_INT64 = 2**63 - 1

VersionArg = Annotated[int, typer.Argument(min=1, max=MAX_INT64, help="Model version number.")]
PortOpt = Annotated[
    int, typer.Option(min=0, max=65535, help="TCP port to listen on (0 picks a free one).")
]
ReplicasArg = Annotated[int, typer.Argument(min=1, max=256, help="Replicas per host (1-256).")]
EndpointArg = Annotated[str, typer.Argument(help="Endpoint name.")]
ModelNameArg = Annotated[str, typer.Argument(help="Registered model name.")]
RequestArg = Annotated[
    str, typer.Argument(help="Promotion request id, or its first characters (`promotions list`).")
]
ReasonOpt = Annotated[str | None, typer.Option(help="Why (recorded in the audit trail).")]


_AGO = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def when_ms(text: str | None, option: str, *, now_ms: int | None = None) -> int | None:
    """A point in time typed on the command line, as ms since the epoch (UTC).

    Takes an ISO 8601 date or time (``2026-11-30``, ``2026-11-30T09:00``; no zone means
    UTC) or a span before now (``90s``, ``30m``, ``2h``, ``7d``, ``2w``). Anything else is
    a usage error naming ``option``.
    """
    import time
    from datetime import UTC, datetime

    if text is None:
        return None
    value = text.strip()
    unit = value[-1:].lower()
    if unit in _AGO and value[:-1].replace(".", "", 1).isdigit():
        now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        return now - int(float(value[:-1]) * _AGO[unit] * 1000)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a time: give an ISO date or time (2026-11-30, "
            "2026-11-30T09:00) or a span before now (30m, 2h, 7d).",
            param_hint=option,
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)
