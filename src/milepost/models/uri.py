"""Model URIs: ``models:/NAME/VERSION``, ``models:/NAME/STAGE``, ``models:/NAME@ALIAS``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from milepost.errors import InvalidInput

__all__ = ["ModelRef", "parse_model_uri"]

_NAME = r"[A-Za-z0-9][\w.\-]{0,255}"
_URI = re.compile(rf"^models:/(?P<name>{_NAME})(?:/(?P<sel>[A-Za-z0-9]+)|@(?P<alias>[\w\-]+))$")
_STAGES = {
    "none": "None",
    "staging": "Staging",
    "production": "Production",
    "archived": "Archived",
    "latest": "latest",
}


@dataclass(frozen=True)
class ModelRef:
    """What a URI points at: exactly one of version, stage (or ``latest``) or alias."""

    name: str
    version: int | None = None
    stage: str | None = None
    alias: str | None = None


def parse_model_uri(uri: str) -> ModelRef:
    """Parse a model URI.

    Raises:
        InvalidInput: the URI is malformed (the message shows the accepted forms).
    """
    m = _URI.match(uri.strip()) if isinstance(uri, str) else None
    if not m:
        raise InvalidInput(
            f"Model URI {uri!r} is not valid.",
            hint="Use models:/NAME/VERSION, models:/NAME/Production (or Staging, latest) "
            "or models:/NAME@ALIAS.",
        )
    name, sel, alias = m.group("name"), m.group("sel"), m.group("alias")
    if alias:
        return ModelRef(name, alias=alias)
    assert sel is not None
    if sel.isdigit():
        if int(sel) < 1:
            raise InvalidInput(f"Model URI {uri!r}: versions start at 1.")
        return ModelRef(name, version=int(sel))
    stage = _STAGES.get(sel.lower())
    if stage is None:
        raise InvalidInput(
            f"Model URI {uri!r}: {sel!r} is neither a version nor a stage.",
            hint="Stages: Staging, Production, Archived, None; or 'latest'.",
        )
    return ModelRef(name, stage=stage)
