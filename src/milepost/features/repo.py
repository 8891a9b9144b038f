"""Loading feature definitions from the user's code, and planning what ``apply`` changes."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

from milepost import _validate as check
from milepost._records import record_dict
from milepost.errors import InvalidInput
from milepost.features import transforms
from milepost.features.definitions import Entity, FeatureView, OnDemandFeatureView

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["Definitions", "PlanItem", "load_definitions"]

View = FeatureView | OnDemandFeatureView


@dataclass(eq=False)  # compared (and hashed) by identity: plans are cached per object
class Definitions:
    """The entities and views a repository defines, by name."""

    entities: dict[str, Entity] = field(default_factory=dict)
    views: dict[str, View] = field(default_factory=dict)
    origin: str = "<objects>"

    @classmethod
    def of(cls, objects: list[Any], origin: str = "<objects>") -> Definitions:
        """Collect definitions from objects; the same name twice is an error."""
        defs = cls(origin=origin)
        # functions beside the definitions (an older transform kept under another name)
        transforms.remember(o for o in objects if inspect.isfunction(o))
        for obj in objects:
            if isinstance(obj, Entity):
                other = defs.entities.get(obj.name)
                if other is not None and other != obj:
                    raise InvalidInput(
                        f"{origin}: entity {obj.name!r} is defined twice, differently."
                    )
                defs.entities[obj.name] = obj
            elif isinstance(obj, (FeatureView, OnDemandFeatureView)):
                if obj.name in defs.views and defs.views[obj.name] is not obj:
                    raise InvalidInput(
                        f"{origin}: feature view {obj.name!r} is defined twice.",
                        hint="Give each view a unique name.",
                    )
                defs.views[obj.name] = obj
                if isinstance(obj, FeatureView):
                    defs.entities.setdefault(obj.entity.name, obj.entity)
        for view in defs.views.values():
            if isinstance(view, OnDemandFeatureView):
                for src in view.sources:
                    if defs.views.get(src.name) is not src:
                        raise InvalidInput(
                            f"On-demand view {view.name!r} reads {src.name!r}, which "
                            f"{origin} does not define."
                        )
        return defs


def load_definitions(source: str | Path | ModuleType) -> Definitions:
    """Import a module (dotted name or ``.py`` file) and collect its definitions.

    Every function the module defines stays known to this process by the fingerprint of
    its code, so loading an older copy of a definitions file makes the versions it
    defined computable again (see :mod:`milepost.features.transforms`).

    Raises:
        InvalidInput: the file is missing, fails to import, or defines nothing.
    """
    if isinstance(source, ModuleType):
        module = source
    else:
        path = check.local_path(source, "Feature definitions (a .py file or module name)")
        text = str(source)
        try:
            exists = path.exists()
        except OSError as exc:  # a name longer than the file system takes
            raise InvalidInput(f"Feature definitions {text[:80]!r}...: {exc.strerror}.") from None
        if text.endswith(".py") or exists:
            if not path.is_file():
                raise InvalidInput(
                    f"Feature definitions file {path} does not exist.",
                    hint="Pass the .py file that defines your entities and views.",
                )
            name = f"milepost_feature_repo_{abs(hash(str(path.resolve())))}"
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                raise InvalidInput(
                    f"Feature definitions file {path} is not a Python file.",
                    hint="Pass the .py file that defines your entities and views.",
                )
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            try:
                spec.loader.exec_module(module)
            except Exception as exc:
                sys.modules.pop(name, None)
                raise InvalidInput(f"Importing {path} failed: {type(exc).__name__}: {exc}") from exc
        else:
            try:
                module = importlib.import_module(text)
            except (ImportError, ValueError, TypeError) as exc:  # "", ".relative", "a..b"
                raise InvalidInput(
                    f"Cannot import feature definitions module {text!r}: {exc}."
                ) from exc
    # every function the module defines, private ones too, can compute older versions
    transforms.remember(
        v
        for v in vars(module).values()
        if inspect.isfunction(v) and v.__module__ == module.__name__
    )
    objects = [v for k, v in vars(module).items() if not k.startswith("_")]
    defs = Definitions.of(objects, origin=getattr(module, "__file__", None) or module.__name__)
    if not defs.views:
        raise InvalidInput(
            f"{defs.origin} defines no feature views.",
            hint="Define FeatureView objects at module level.",
        )
    return defs


@dataclass(frozen=True)
class PlanItem:
    """What ``apply`` would do (or did) to one view.

    Attributes:
        change: ``new``, ``new_version``, ``unchanged``, ``reactivated`` or
            ``not_in_definitions``.
        current_version: the newest active version before the change (None: none).
        next_version: the version the definition is (or becomes).
        next_steps: after ``apply``, what to run next (materialize a version the online
            store does not hold; models that keep reading an older version).
    """

    view: str
    change: str
    current_version: int | None
    next_version: int | None
    fingerprint: str | None
    next_steps: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return record_dict(self)

    def __repr__(self) -> str:
        now = f"v{self.current_version}" if self.current_version else "none"
        then = f"v{self.next_version}" if self.next_version else "none"
        return f"PlanItem({self.view}: {self.change}, {now} -> {then})"
