"""``package.module:attr`` references a user writes (pipelines, train functions, sample
data, suites): imported in one way, refused with one wording.

Each caller checks what the object must be (a pipeline, a function, a suite) and says
so in its own words; what is common is here: the form, the import (with the module's
own error), the attribute path and a close name.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from milepost.errors import InvalidInput, did_you_mean

__all__ = ["resolve_ref"]


def resolve_ref(
    ref: str,
    what: str,
    *,
    example: str,
    hint: str,
    kind: type | None = None,
    kind_label: str = "",
    search_cwd: bool = False,
) -> Any:
    """The object ``ref`` (``"package.module:attr"``, ``attr`` may be dotted) names.

    Args:
        what: names the reference in errors (``"pipeline"``, ``"train"``).
        example: a valid reference, shown when the form is wrong.
        hint: what to do when the module does not import.
        kind, kind_label: the objects a missing attribute is most likely meant to be:
            close names among them are suggested first, and the hint lists them
            (``"Pipelines in it: ..."``).
        search_cwd: also look in the current directory when the module's top package is
            not found on ``sys.path`` (``milepost pipelines run flows:churn`` from the
            project directory).

    Raises:
        InvalidInput: a malformed reference, a module that cannot be imported (with its
            error), or a missing attribute (with close names).
    """
    if not isinstance(ref, str) or ref.count(":") != 1 or not all(ref.split(":")):
        raise InvalidInput(
            f"A {what} reference is 'package.module:attr', got {ref!r}.",
            hint=f"For example {example}.",
        )
    module_name, attr = ref.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        top, cwd = module_name.split(".")[0], os.getcwd()
        here = os.path.exists(os.path.join(cwd, top + ".py")) or os.path.isdir(
            os.path.join(cwd, top)
        )
        if search_cwd and exc.name == top and here and cwd not in sys.path:
            sys.path.append(cwd)
            return resolve_ref(
                ref, what, example=example, hint=hint, kind=kind, kind_label=kind_label
            )
        raise _unimportable(module_name, what, ref, exc, hint) from exc
    except Exception as exc:  # the module's own error: say which, the user fixes it there
        raise _unimportable(module_name, what, ref, exc, hint) from exc
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            members = getattr(obj, "__dict__", {})  # an int or a slotted object has none
            names = sorted(k for k in members if not k.startswith("_"))
            likely = [k for k in names if kind is not None and isinstance(members[k], kind)]
            listed = f"{kind_label} in it" if kind is not None else "Its names"
            shown = likely if kind is not None else names[:20]
            raise InvalidInput(
                f"Module {module_name!r} of {what} {ref!r} has no attribute {part!r}."
                + did_you_mean(part, likely or names),
                hint=f"{listed}: {', '.join(shown) or 'none'}.",
            )
        obj = getattr(obj, part)
    return obj


def _unimportable(
    module_name: str, what: str, ref: str, exc: BaseException, hint: str
) -> InvalidInput:
    return InvalidInput(
        f"Cannot import module {module_name!r} of {what} {ref!r}: {type(exc).__name__}: {exc}.",
        hint=hint,
    )
