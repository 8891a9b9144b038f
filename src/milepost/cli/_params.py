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
    str, typer.Argument(help="Promotion request id, or its first characters (`models requests`).")
]
ReasonOpt = Annotated[str | None, typer.Option(help="Why (recorded in the audit trail).")]
