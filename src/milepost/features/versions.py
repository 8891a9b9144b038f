"""Registered view versions: rebuilt from the registry, traced to their file, and checked
against what the current online store holds.

A version is read with the definition stored in the registry, not with today's file:

- its stored features (keys, source, TTL, schema) come from the stored definition, so
  online reads and model servers read any version's materialized rows without code;
- its transform is the function loaded in this process whose code has the stored
  fingerprint (:mod:`milepost.features.transforms`); when none has, the features the
  transform does not compute stay readable and the others are refused with the version,
  the feature and the file (and git commit) that defined it;
- an on-demand version is rebuilt over the versions of its sources it was defined on.

``apply`` records where each new version was defined (:func:`origin`) and says what to
run next (:func:`next_steps`). Online reads refuse a stored version the current online
store does not hold (:class:`Holdings`) rather than reading every value as missing.
"""

from __future__ import annotations

import inspect
import subprocess
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from milepost.errors import BackendUnavailable, Conflict, InvalidInput, mask_uri
from milepost.features.definitions import (
    DatasetSource,
    Entity,
    FeatureView,
    Field,
    FileSource,
    OnDemandFeatureView,
    PushSource,
)
from milepost.features.transforms import Origin, StoredTransform

if TYPE_CHECKING:
    from collections.abc import Sequence

    from milepost.features.backends.sql import VersionRecord, Watermark
    from milepost.features.online import OnlineStore
    from milepost.features.repo import Definitions

__all__ = ["Holdings", "from_definition", "next_steps", "origin", "rebuild", "view_of"]

View = FeatureView | OnDemandFeatureView
INCREMENTAL = "`milepost features materialize --incremental`"


def _key(rec: VersionRecord) -> str:
    return f"{rec.name}:v{rec.version}"


def view_of(rec: VersionRecord, records: Sequence[VersionRecord], defs: Definitions) -> View:
    """The definitions' own object when it is this version, else the version rebuilt."""
    view = defs.views.get(rec.name)
    if view is not None and view.fingerprint() == rec.fingerprint:
        return view
    return rebuild(rec, records, defs)


def rebuild(rec: VersionRecord, records: Sequence[VersionRecord], defs: Definitions) -> View:
    """A registered version from its stored definition.

    Its fingerprint is the stored one: the transform is a :class:`StoredTransform` of
    the stored code, run by the loaded function with that code.

    Raises:
        InvalidInput: an on-demand version whose code is not loaded (it stores nothing,
            so nothing of it is readable without its code), or whose sources' versions
            are gone.
    """
    d = rec.definition
    key = _key(rec)
    found = Origin.of(rec.origin)
    schema = [Field(n, t) for n, t in d["schema"]]
    if d.get("kind") == "on_demand":
        transform = StoredTransform(d["transform"], key, tuple(f.name for f in schema), found)
        if transform.function is None:
            raise transform.missing()
        sources = []
        for name, fingerprint in zip(d["sources"], d["source_fingerprints"], strict=True):
            src = next(
                (r for r in records if r.name == name and r.fingerprint == fingerprint),
                None,
            )
            if src is None:
                raise InvalidInput(f"{key} reads a version of {name!r} that is not registered.")
            source_view = view_of(src, records, defs)
            if not isinstance(source_view, FeatureView):
                raise InvalidInput(f"{key} reads {_key(src)}, which is not a stored view.")
            sources.append(source_view)
        return OnDemandFeatureView(
            name=rec.name,
            sources=sources,
            request_schema=[Field(n, t) for n, t in d["request_schema"]],
            schema=schema,
            transform=transform,
        )
    return from_definition(rec)


def from_definition(rec: VersionRecord) -> FeatureView:
    """A stored view version as a FeatureView; its transform (if it had one) is a
    :class:`StoredTransform` of the stored code."""
    d = rec.definition
    src = d["source"]
    source = (
        FileSource(src["path"])
        if src["kind"] == "file"
        else DatasetSource(src["ref"])
        if src["kind"] == "dataset"
        else PushSource(src["name"])
    )
    schema = [Field(n, t) for n, t in d["schema"]]
    code = d.get("transform")
    return FeatureView(
        name=rec.name,
        entity=Entity(
            d["entity"]["name"], d["entity"]["join_keys"], d["entity"].get("description", "")
        ),
        source=source,
        timestamp_field=d["timestamp_field"],
        created_timestamp_field=d["created_timestamp_field"],
        schema=schema,
        ttl=timedelta(seconds=d["ttl_seconds"]),
        transform=None
        if code is None
        else StoredTransform(code, _key(rec), tuple(f.name for f in schema), Origin.of(rec.origin)),
    )


# -- where a definition came from -------------------------------------------------------------


def _git(directory: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(directory), *args],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def origin(view: View, defs: Definitions, cache: dict[str, Any] | None = None) -> dict[str, Any]:
    """Where ``view`` is defined now: file, line, function and, in a git checkout, the
    commit (and whether the file differs from it), for messages about this version.

    ``cache`` keeps the git state per file across the views of one ``apply``.
    """
    out: dict[str, Any] = {"definitions": defs.origin}
    fn = view.transform
    path: Path | None = None
    if fn is not None and not isinstance(fn, StoredTransform):
        out["function"] = getattr(fn, "__qualname__", None)
        # the module that defines it: a model server without this version's code loaded
        # imports it, if installed there (see milepost.features.serving)
        out["module"] = getattr(fn, "__module__", None)
        try:
            found = inspect.getsourcefile(fn)
            out["line"] = inspect.getsourcelines(fn)[1]
        except (OSError, TypeError):
            found = None
        path = Path(found) if found else None
    elif Path(defs.origin).is_file():
        path = Path(defs.origin)
    if path is None or not path.is_file():
        return out
    path = path.resolve()
    cache = {} if cache is None else cache
    if str(path) not in cache:
        cache[str(path)] = _git_state(path)
    out.update(cache[str(path)])
    return out


def _git_state(path: Path) -> dict[str, Any]:
    """The file's path (relative to its git checkout) and the checkout's commit, and
    whether the file differs from that commit; the absolute path outside git."""
    root = _git(path.parent, "rev-parse", "--show-toplevel")
    commit = _git(path.parent, "rev-parse", "HEAD") if root else None
    if not root or not commit:
        return {"file": str(path)}
    # modified, untracked or ignored: that commit does not hold this text of the file
    status = _git(path.parent, "status", "--porcelain", "--ignored", "--", str(path))
    return {
        "file": path.relative_to(Path(root).resolve()).as_posix(),
        "repository": root,
        "commit": commit,
        "dirty": bool(status),
    }


# -- what the online store holds ----------------------------------------------------------------


@dataclass(frozen=True)
class Holdings:
    """Which view versions the current online store holds (one store read, one query).

    A stored version is held when a materialization into this store was recorded. Also
    held, where nothing else can be known: any version when the store cannot be reached
    (its reads say so), a version materialized before stores had identities (and into
    no recorded store since), and the first version of a push-source view, whose rows
    arrive by push.
    """

    store_uri: str
    reachable: bool
    held: frozenset[tuple[str, int]]
    elsewhere: dict[tuple[str, int], str]  # materialized into another store: its URI

    @classmethod
    def read(cls, online: OnlineStore, marks: Sequence[Watermark]) -> Holdings:
        """What ``online`` holds according to the watermarks ``marks``."""
        uri = mask_uri(online.uri)
        try:
            identity = online.identity()
        except BackendUnavailable:
            return cls(uri, False, frozenset(), {})
        mine = identity.store_id if identity is not None else None
        held = frozenset((m.name, m.version) for m in marks if m.store_id == mine)
        elsewhere = {(m.name, m.version): m.store_uri for m in marks if m.store_id != mine}
        return cls(uri, True, held, elsewhere)

    def holds(self, rec: VersionRecord) -> bool:
        """Whether online reads of this stored version read what was materialized."""
        key = (rec.name, rec.version)
        if not self.reachable or key in self.held:
            return True
        if key in self.elsewhere:
            return False
        if rec.materialized_until is not None:
            return True  # materialized before per-store watermarks
        d = rec.definition
        return d.get("kind") == "feature_view" and d["source"]["kind"] == "push" and key[1] == 1

    def refusal(
        self, rec: VersionRecord, records: Sequence[VersionRecord], asked: Sequence[str]
    ) -> Conflict:
        """The error for reading a version this store does not hold."""
        name, key = rec.name, _key(rec)
        text = f"{key} is not materialized into the online store {self.store_uri}"
        other = self.elsewhere.get((name, rec.version))
        if other == self.store_uri:
            text += " (it was, but the store lost its data or was replaced since)"
        elif other:
            text += f" (only into {other})"
        text += ", so every value would read as missing."
        moved = [r for r in asked if r.count(":") == 1 and r.partition(":")[0] == name]
        if moved:
            text += f" {moved[0]} reads {key}, the version of the loaded definitions."
        hint = f"Run {INCREMENTAL} to load it."
        older = max(
            (
                r
                for r in records
                if r.name == name
                and r.status == "active"
                and r.version < rec.version
                and self.holds(r)
            ),
            key=lambda r: r.version,
            default=None,
        )
        if older is not None:
            feature = moved[0].partition(":")[2] if moved else rec.definition["schema"][0][0]
            hint += (
                f" Until then {_key(older)}, which the store holds, stays readable as "
                f"{_key(older)}:{feature} (models that pin it keep reading it)."
            )
        return Conflict(text, hint=hint)


def next_steps(
    rec: VersionRecord,
    change: str,
    previous: int | None,
    holdings: Holdings | None,
    pinned: Sequence[tuple[str, int, str, int]],
) -> tuple[str, ...]:
    """What to run after ``apply`` for one view: materialize a version the online store
    does not hold; which models keep reading the version before."""
    if rec.definition.get("kind") != "feature_view":
        return ()
    name, key, version = rec.name, _key(rec), rec.version
    steps = []
    if holdings is not None and not holdings.holds(rec):
        steps.append(
            f"{key} is not in the online store yet: run {INCREMENTAL} before reading "
            f"{name}:<feature> online (until then those reads are refused)."
        )
    if change not in ("new_version", "reactivated"):
        return tuple(steps)
    by_version: dict[int, list[str]] = {}
    for model, model_version, stage, view_version in pinned:
        if view_version != version:
            by_version.setdefault(view_version, []).append(f"{model} v{model_version} ({stage})")
    for old, models in sorted(by_version.items()):
        steps.append(
            f"{', '.join(models)} pin{'s' if len(models) == 1 else ''} {name}:v{old} and "
            f"keep{'s' if len(models) == 1 else ''} reading it; keep it fresh with "
            f"`milepost features materialize --incremental --view {name}:v{old}`, or "
            f"retrain on {key}."
        )
    if previous is not None and previous != version and previous not in by_version:
        steps.append(
            f"{name}:v{previous} stays readable as {name}:v{previous}:<feature>; no model pins it."
        )
    return tuple(steps)
