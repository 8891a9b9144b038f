"""Model URIs: ``models:/NAME/VERSION``, ``models:/NAME/STAGE``, ``models:/NAME@ALIAS``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from milepost import _validate as check
from milepost.errors import InvalidInput

__all__ = ["ModelRef", "check_model_name", "parse_model_uri"]

_NAME = r"[A-Za-z0-9][\w.\-]{0,255}"
_NAME_RE = re.compile(_NAME)
_MAX_NAME_BYTES = 255
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


def check_model_name(name: object) -> str:
    """A registered model's name, or InvalidInput saying what is wrong with it.

    At most 255 bytes in UTF-8: the name is a directory of its run's artifacts
    (``models/NAME/...``), which every file system must be able to create.
    """
    text = check.name(
        name,
        "Model name",
        pattern=_NAME_RE,
        rule="use letters, digits, '_', '-' and '.' (starting with a letter or digit)",
    )
    size = len(text.encode())
    if size > _MAX_NAME_BYTES:
        raise InvalidInput(
            f"Model name {check.short_repr(text)} is {size} bytes in UTF-8; the limit is "
            f"{_MAX_NAME_BYTES} (it names a directory of the run's artifacts)."
        )
    return text


def parse_model_uri(uri: str) -> ModelRef:
    """Parse a model URI.

    Raises:
        InvalidInput: the URI is malformed (the message shows the accepted forms).
    """
    m = _URI.fullmatch(uri.strip()) if isinstance(uri, str) else None
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
        if not 1 <= int(sel) <= check.INT64_MAX:
            raise InvalidInput(
                f"Model URI {check.short_repr(uri)}: versions start at 1 (and are at most "
                f"{check.INT64_MAX})."
            )
        return ModelRef(name, version=int(sel))
    stage = _STAGES.get(sel.lower())
    if stage is None:
        raise InvalidInput(
            f"Model URI {uri!r}: {sel!r} is neither a version nor a stage.",
            hint="Stages: Staging, Production, Archived, None; or 'latest'.",
        )
    return ModelRef(name, stage=stage)
