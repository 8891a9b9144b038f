"""Lineage: one graph over everything the metadata store records.

CONTRACT (issue 15; the lineage part fills the bodies, the record types are agreed):

A node is ``KIND:REF``; an edge points from what was used to what was made of it
(upstream -> downstream), with a relation naming how. Node kinds and their refs:

=======================  ===========================  ====================================
kind                     ref                          from
=======================  ===========================  ====================================
``dataset_version``      ``NAME@VERSION``             dataset_versions
``validation``           result id                    validation_results
``feature_view_version`` ``VIEW:VERSION``             feature_view_versions
``run``                  run id                       runs (+ run_inputs, feature_retrievals)
``pipeline_run``         run id                       pipeline_runs
``pipeline_step``        ``RUN_ID/STEP``              pipeline_steps, pipeline_links
``code_version``         git commit (or source hash)  runs.git_commit, model_versions
``evaluation``           eval id                      evaluations
``fairness_audit``       audit id                     fairness_audits
``promotion_request``    request id                   promotion_requests
``gate_result``          ``REQUEST_ID#POSITION``      gate_results
``stage_transition``     stage_history event id       stage_history
``model_version``        ``NAME/VERSION``             model_versions
``endpoint``             endpoint name                endpoints, deployment_events
``deployment_event``     event id                     deployment_events
``monitor``              monitor name                 monitors
``alert``                alert id                     alerts
``trigger``              trigger name                 pipeline_triggers
``trigger_firing``       firing id                    trigger_firings
=======================  ===========================  ====================================
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa

from milepost import _validate as check
from milepost._records import record_dict
from milepost.errors import InvalidInput, NotFound, did_you_mean
from milepost.governance import _lineage_nodes as nodes_
from milepost.governance import _lineage_read as read
from milepost.governance import _lineage_sql as sql
from milepost.stores.schema import (
    STAGES,
    dataset_versions,
    datasets,
    model_aliases,
    model_versions,
    registered_models,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from milepost.stores.metadata import MetadataStore

__all__ = [
    "MAX_NODES",
    "NODE_KINDS",
    "Direction",
    "LineageEdge",
    "LineageGraph",
    "LineageNode",
    "LineageService",
    "NodeKind",
]

NodeKind = Literal[
    "dataset_version",
    "validation",
    "feature_view_version",
    "run",
    "pipeline_run",
    "pipeline_step",
    "code_version",
    "evaluation",
    "fairness_audit",
    "promotion_request",
    "gate_result",
    "stage_transition",
    "model_version",
    "endpoint",
    "deployment_event",
    "monitor",
    "alert",
    "trigger",
    "trigger_firing",
]
NODE_KINDS: tuple[str, ...] = NodeKind.__args__  # type: ignore[attr-defined]
Direction = Literal["upstream", "downstream", "both"]
#: The most nodes one graph holds; a walk that reaches it stops and says so (``truncated``).
MAX_NODES = 2000

#: What a user types, for messages.
REF_FORMS = (
    "models:/NAME/3 (or /Production, @alias), datasets:/NAME@4 (or NAME@4), runs:/RUN_ID, "
    "endpoints:/NAME, pipelines:/RUN_ID, monitors:/NAME, triggers:/NAME, or KIND:REF with "
    "KIND one of " + ", ".join(NODE_KINDS)
)
_EXAMPLES = {
    "model_version": "models:/NAME/3 (`milepost models list NAME` lists them)",
    "dataset_version": "datasets:/NAME@4 (`milepost data list` lists them)",
    "run": "runs:/RUN_ID (`milepost runs list` lists them)",
    "endpoint": "endpoints:/NAME (`milepost endpoints list` lists them)",
    "pipeline_run": "pipelines:/RUN_ID (`milepost pipelines runs` lists them)",
    "monitor": "monitors:/NAME (`milepost monitor list` lists them)",
    "trigger": "triggers:/NAME (`milepost triggers list` lists them)",
    "feature_view_version": "features:/VIEW:v2",
    "gate_result": "gate_result:REQUEST_ID#POSITION",
    "pipeline_step": "pipeline_step:RUN_ID/STEP",
}
_SCHEMES = {
    "models": "model_version",
    "datasets": "dataset_version",
    "runs": "run",
    "endpoints": "endpoint",
    "pipelines": "pipeline_run",
    "monitors": "monitor",
    "triggers": "trigger",
    "features": "feature_view_version",
}
_MODEL_REF = re.compile(r"(?P<name>[^/@]+)(?:/(?P<sel>[^/@]+)|@(?P<alias>[^/@]+))")
_DATASET_REF = re.compile(r"(?P<name>[^@]+)@(?P<version>\d+|latest)")


@dataclass(frozen=True)
class LineageNode:
    """One recorded object: ``kind``, its ``ref`` and a short label; ``attrs`` holds what a
    reader wants at a glance (a model version's stage, a run's status, a gate's status,
    times in ms). ``attrs["missing"]`` is True for an object something names that is no
    longer (or never was) in the store."""

    kind: str
    ref: str
    label: str
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """``KIND:REF``, the node's identity in a graph."""
        return f"{self.kind}:{self.ref}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (with ``key``)."""
        return {"key": self.key, **record_dict(self)}

    def __repr__(self) -> str:
        return f"LineageNode({self.key})"


@dataclass(frozen=True)
class LineageEdge:
    """``source`` (a node key) was used to make ``target``; ``relation`` says how
    (``trained_on``, ``input``, ``produced``, ``evaluated``, ``gated``, ``deployed``...)."""

    source: str
    target: str
    relation: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return record_dict(self)

    def __repr__(self) -> str:
        return f"LineageEdge({self.source} -{self.relation}-> {self.target})"


@dataclass(frozen=True)
class LineageGraph:
    """The part of the lineage graph around ``root`` (a node key).

    ``direction`` and ``depth`` say how it was walked; ``truncated`` is True when the walk
    stopped at ``max_nodes`` nodes before reaching everything (ask for less depth, or one
    direction). ``upstream_keys`` and ``downstream_keys`` are the keys each walk reached,
    nearest first: the graph can hold a cycle through something that spans time (a
    retrained model is downstream of its endpoint's monitor and upstream of it), so the
    root's two sides are what the walks found, not every path along the edges.
    """

    root: str
    nodes: tuple[LineageNode, ...]
    edges: tuple[LineageEdge, ...]
    direction: str = "both"
    depth: int | None = None
    truncated: bool = False
    max_nodes: int = MAX_NODES
    upstream_keys: tuple[str, ...] = ()
    downstream_keys: tuple[str, ...] = ()

    def node(self, key: str) -> LineageNode:
        """The node with this key (KeyError when it is not in the graph)."""
        for n in self.nodes:
            if n.key == key:
                return n
        raise KeyError(key)

    def _walk(self, key: str | None, upstream: bool) -> list[LineageNode]:
        start = self.root if key is None else key
        self.node(start)  # KeyError for a key outside the graph
        by_key = {n.key: n for n in self.nodes}
        if start == self.root and (self.upstream_keys or self.downstream_keys):
            side = self.upstream_keys if upstream else self.downstream_keys
            return [by_key[k] for k in side if k in by_key]
        nexts: dict[str, list[str]] = {}
        for e in self.edges:
            a, b = (e.target, e.source) if upstream else (e.source, e.target)
            nexts.setdefault(a, []).append(b)
        seen, order, queue = {start}, [], deque([start])
        while queue:
            for nxt in nexts.get(queue.popleft(), []):
                if nxt not in seen:
                    seen.add(nxt)
                    order.append(nxt)
                    queue.append(nxt)
        return [by_key[k] for k in order if k in by_key]

    def upstream(self, key: str | None = None) -> list[LineageNode]:
        """Every node ``key`` (default: the root) was made from, nearest first (for the
        root: what the upstream walk found; for another key: along the graph's edges)."""
        return self._walk(key, upstream=True)

    def downstream(self, key: str | None = None) -> list[LineageNode]:
        """Every node made from ``key`` (default: the root), nearest first (for the root:
        what the downstream walk found; for another key: along the graph's edges)."""
        return self._walk(key, upstream=False)

    def of_kind(self, kind: str) -> list[LineageNode]:
        """The nodes of one kind."""
        return [n for n in self.nodes if n.kind == kind]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``root``, ``nodes``, ``edges`` and how it was walked."""
        return {
            "root": self.root,
            "direction": self.direction,
            "depth": self.depth,
            "truncated": self.truncated,
            "max_nodes": self.max_nodes,
            "upstream_keys": list(self.upstream_keys),
            "downstream_keys": list(self.downstream_keys),
            "nodes": [n.to_dict() for n in self.nodes],
            "edges": [e.to_dict() for e in self.edges],
        }

    def __repr__(self) -> str:
        cut = ", truncated" if self.truncated else ""
        return f"LineageGraph({self.root}: {len(self.nodes)} nodes, {len(self.edges)} edges{cut})"


def _trains(edge: sql.Edge) -> bool:
    """Whether an edge carries training data forward (for ``models_trained_on``)."""
    source_kind = sql.split_key(edge[0])[0]
    if source_kind == "model_version":  # a model is not another model's training data
        return False
    if edge[2] in read.DERIVATION:
        return True
    target_kind = sql.split_key(edge[1])[0]
    return (
        source_kind == "dataset_version"
        and target_kind in ("run", "model_version")
        and edge[2] not in read.EVAL_ROLES
    )


class LineageService:
    """Reads the lineage graph from the metadata store (it writes nothing).

    Args:
        db: the metadata store.
        max_nodes: the most nodes one graph holds (the walk stops there and says so).
    """

    def __init__(self, db: MetadataStore, *, max_nodes: int = MAX_NODES) -> None:
        self._db = db
        self.max_nodes = check.integer(max_nodes, "max_nodes", minimum=1)

    # -- refs -------------------------------------------------------------------------

    def resolve(self, ref: str) -> str:
        """A node key from what a user types: ``models:/NAME/3``, ``runs:/ID``,
        ``datasets:/NAME@4`` or ``NAME@4``, ``endpoints:/NAME``, ``pipelines:/RUN_ID``,
        or ``KIND:REF``. Raises NotFound (with close names) when nothing has that ref.

        Raises:
            InvalidInput: ``ref`` has none of these forms (the message lists them).
            NotFound: nothing recorded has that ref (with close names).
        """
        text = check.string(ref, "Lineage ref").strip()
        with self._db.read() as conn:
            kind, value = self._parse(conn, text)
            k = sql.key(kind, value)
            if nodes_.describe(conn, [k]):
                return k
            known = nodes_.names(conn, kind)
        what = kind.replace("_", " ")
        raise NotFound(
            f"No {what} {value!r} is recorded.{did_you_mean(value, known)}",
            hint=f"A {what} ref looks like {_EXAMPLES.get(kind, f'{kind}:REF')}.",
            details={"kind": kind, "ref": value},
        )

    def _parse(self, conn: Connection, text: str) -> tuple[str, str]:
        scheme, sep, rest = text.partition(":/")
        if sep and scheme in _SCHEMES:
            kind, value = _SCHEMES[scheme], rest.lstrip("/")
        elif sep and scheme not in NODE_KINDS:
            raise InvalidInput(
                f"Lineage ref {check.short_repr(text)}: unknown scheme {scheme + ':/'!r}."
                + did_you_mean(scheme, _SCHEMES),
                hint=f"Refs look like {REF_FORMS}.",
            )
        else:
            kind, colon, value = text.partition(":")
            if not colon or kind not in NODE_KINDS:
                return self._bare(conn, text)
        if not value:
            raise InvalidInput(
                f"Lineage ref {check.short_repr(text)} names no {kind.replace('_', ' ')}.",
                hint=f"Refs look like {REF_FORMS}.",
            )
        if kind == "model_version":
            value = self._model(conn, value)
        elif kind == "dataset_version":
            value = self._dataset(conn, value)
        elif kind == "feature_view_version":
            name, _, version = value.rpartition(":")
            if name and version.isdigit():
                value = f"{name}:v{version}"
        return kind, value

    def _bare(self, conn: Connection, text: str) -> tuple[str, str]:
        """``NAME@4`` is a dataset version, ``NAME/3`` a model version; anything else an
        endpoint, a run or a pipeline run, whichever has it."""
        if _DATASET_REF.fullmatch(text):
            return "dataset_version", self._dataset(conn, text)
        if _MODEL_REF.fullmatch(text) and "/" in text:
            return "model_version", self._model(conn, text)
        for kind in ("endpoint", "run", "pipeline_run", "monitor", "trigger"):
            if nodes_.describe(conn, [sql.key(kind, text)]):
                return kind, text
        raise InvalidInput(
            f"Lineage ref {check.short_repr(text)} names nothing recorded.",
            hint=f"Refs look like {REF_FORMS}.",
        )

    def _model(self, conn: Connection, value: str) -> str:
        m = _MODEL_REF.fullmatch(value)
        if m is None:
            raise InvalidInput(
                f"Model ref {check.short_repr(value)} is not NAME/VERSION, NAME/STAGE or "
                "NAME@ALIAS.",
                hint="For example models:/churn/3, models:/churn/Production or "
                "models:/churn@champion.",
            )
        name, sel, alias = m.group("name"), m.group("sel"), m.group("alias")
        if sel is not None and sel.isdigit():
            return f"{name}/{int(sel)}"
        query = sa.select(model_versions.c.version).join(
            registered_models, registered_models.c.model_id == model_versions.c.model_id
        )
        if alias is not None:
            query = (
                sa.select(model_versions.c.version)
                .join(model_aliases, model_aliases.c.version_id == model_versions.c.version_id)
                .join(registered_models, registered_models.c.model_id == model_aliases.c.model_id)
                .where(model_aliases.c.alias == alias)
            )
            what = f"alias {alias!r}"
        elif sel is not None and sel.lower() == "latest":
            query = query.order_by(model_versions.c.version.desc())
            what = "versions"
        else:
            stage = _stage(sel or "")
            query = query.where(model_versions.c.stage == stage).order_by(
                model_versions.c.version.desc()
            )
            what = f"version in {stage}"
        version = conn.execute(query.where(registered_models.c.name == name).limit(1)).scalar()
        if version is None:
            raise NotFound(
                f"Model {name!r} has no {what}.",
                hint=f"List its versions with `milepost models versions {name}`.",
            )
        return f"{name}/{version}"

    def _dataset(self, conn: Connection, value: str) -> str:
        name, at, version = value.rpartition("@")
        if not at:
            name, version = value, "latest"
        if version.isdigit():
            return f"{name}@{int(version)}"
        if version != "latest":
            raise InvalidInput(
                f"Dataset ref {check.short_repr(value)} is not NAME@VERSION.",
                hint="For example datasets:/customers@4 or customers@latest.",
            )
        newest = conn.execute(
            sa.select(sa.func.max(dataset_versions.c.version))
            .join(datasets, datasets.c.dataset_id == dataset_versions.c.dataset_id)
            .where(datasets.c.name == name)
        ).scalar()
        if newest is None:
            return f"{name}@latest"  # NotFound, with close names, from resolve()
        return f"{name}@{newest}"

    # -- graphs -----------------------------------------------------------------------

    def graph(
        self,
        ref: str,
        *,
        direction: Direction = "both",
        depth: int | None = None,
        max_nodes: int | None = None,
    ) -> LineageGraph:
        """The graph around ``ref`` (anything :meth:`resolve` takes), walked upstream,
        downstream or both, up to ``depth`` edges (None: all).

        Upstream is everything ``ref`` was made from; downstream everything made from it
        (its siblings, what else its inputs made, are not included). The walk is
        breadth-first and stops at ``max_nodes`` (default :data:`MAX_NODES`) nodes, nearest
        first, with ``truncated=True`` on the result. From a point in time (a dataset or
        model version, an evaluation, an alert) it is bounded by time too: nothing made
        from it is older, nothing it was made from is newer (runs, endpoints, monitors and
        the like span time and are not bounded; see ``SPANS``).

        Raises:
            InvalidInput: a bad ref, direction or depth.
            NotFound: nothing recorded has that ref.
        """
        check.choice(direction, "direction", ("upstream", "downstream", "both"))
        if depth is not None:
            depth = check.integer(depth, "depth", minimum=0)
        limit = (
            self.max_nodes
            if max_nodes is None
            else check.integer(max_nodes, "max_nodes", minimum=1)
        )
        root = self.resolve(ref)
        with self._db.read() as conn:
            walker = _Walker(conn, root)
            edges: dict[sql.Edge, None] = {}
            truncated = False
            sides: dict[bool, list[str]] = {True: [], False: []}
            for up in (True, False):
                if direction == ("downstream" if up else "upstream"):
                    continue
                cut = walker.walk(up, depth, limit, edges, sides[up])
                truncated = truncated or cut
            walker.describe(walker.order)
        out_nodes = []
        for k in walker.order:
            kind, ref_ = sql.split_key(k)
            label, attrs = walker.info.get(k) or (ref_, {"missing": True})
            out_nodes.append(LineageNode(kind, ref_, label, attrs))
        return LineageGraph(
            root=root,
            nodes=tuple(out_nodes),
            edges=tuple(LineageEdge(*e) for e in edges),
            direction=direction,
            depth=depth,
            truncated=truncated,
            max_nodes=limit,
            upstream_keys=tuple(sides[True]),
            downstream_keys=tuple(sides[False]),
        )

    def models_trained_on(self, dataset: str, *, stage: str | None = None) -> list[LineageNode]:
        """Model versions whose training data was ``dataset`` (``NAME@VERSION``), directly or
        through a run, a training set or a pipeline; ``stage`` filters (``Production``).

        Followed: the dataset's use by runs in any role but evaluation ones (``eval``,
        ``test``, ``holdout``...), feature retrievals that read it as a source, child runs,
        the models runs produced, the models that record it as their data, and pipeline
        steps that read it, the steps they feed and what those made. Evaluations,
        validations and the models' own descendants are not training.

        Raises:
            InvalidInput: ``dataset`` is not a dataset version ref, or an unknown stage.
            NotFound: no such dataset version.
        """
        dataset = check.string(dataset, "dataset").strip()
        wanted = _stage(stage) if stage is not None else None
        root = self.resolve(dataset if "/" in dataset or "@" in dataset else f"{dataset}@latest")
        if sql.split_key(root)[0] != "dataset_version":
            raise InvalidInput(
                f"models_trained_on takes a dataset version (NAME@VERSION), got {dataset!r}.",
                hint="For example models_trained_on('customers@4', stage='Production').",
            )
        with self._db.read() as conn:
            walker = _Walker(conn, root, keep=_trains)
            walker.walk(False, None, 50 * self.max_nodes, {})
            models = [k for k in walker.order if k.startswith("model_version:")]
            found = walker.describe(models)
        out = [
            LineageNode("model_version", sql.split_key(k)[1], *info)
            for k in models
            if (info := found.get(k)) is not None
            and (wanted is None or info[1].get("stage") == wanted)
        ]
        return sorted(out, key=lambda n: (n.ref.rpartition("/")[0], int(n.ref.rpartition("/")[2])))


#: Kinds that stand for something used over a span of time (a run, an endpoint over its
#: history, a feature view definition): a walk does not bound them by time.
SPANS = frozenset(
    {
        "run",
        "pipeline_run",
        "pipeline_step",
        "code_version",
        "feature_view_version",
        "endpoint",
        "monitor",
        "trigger",
    }
)
_TIME_ATTRS = ("created_at", "raised_at", "fired_at", "at")


def _time(info: nodes_.Info | None) -> int | None:
    if info is None:
        return None
    for name in _TIME_ATTRS:
        value = info[1].get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


class _Walker:
    """Breadth-first walks from ``root`` on one connection, sharing what they found.

    Time bounds the walk when the root is a point in time (a dataset or model version, an
    evaluation, an alert...): nothing made from it is older, nothing it was made from is
    newer. So an alert raised on an endpoint before a version was deployed there is not
    downstream of that version, though the endpoint is one node over its whole history.
    Runs, pipeline runs and steps, endpoints, monitors, triggers, feature view versions
    and code versions span time and are not bounded (:data:`SPANS`).
    """

    def __init__(self, conn: Connection, root: str, *, keep: Any = None) -> None:
        self.conn, self.root, self.keep = conn, root, keep
        self.order: dict[str, None] = {root: None}
        self.info: dict[str, nodes_.Info | None] = {}
        self.root_time = (
            None if sql.split_key(root)[0] in SPANS else _time(self.describe([root]).get(root))
        )

    def describe(self, keys: Any) -> dict[str, nodes_.Info]:
        """Labels and attributes of ``keys`` (read once each)."""
        new = [k for k in keys if k not in self.info]
        if new:
            found = nodes_.describe(self.conn, new)
            for k in new:
                self.info[k] = found.get(k)
        return {k: i for k in keys if (i := self.info.get(k)) is not None}

    def _in_time(self, key: str, up: bool) -> bool:
        if self.root_time is None or key == self.root or sql.split_key(key)[0] in SPANS:
            return True
        t = _time(self.info.get(key))
        return t is None or (t <= self.root_time if up else t >= self.root_time)

    def walk(
        self,
        up: bool,
        depth: int | None,
        limit: int,
        edges: dict[sql.Edge, None],
        reached: list[str] | None = None,
    ) -> bool:
        """One direction from the root, adding to :attr:`order`, ``edges`` and
        ``reached`` (the keys this walk found, nearest first); True when it stopped at
        ``limit`` nodes."""
        frontier, level, seen = [self.root], 0, {self.root}
        while frontier and (depth is None or level < depth):
            by_kind: dict[str, list[str]] = {}
            for k in frontier:
                kind, ref = sql.split_key(k)
                by_kind.setdefault(kind, []).append(ref)
            found: list[sql.Edge] = []
            for kind, refs in by_kind.items():
                readers = read.READERS.get(kind)
                if readers is not None:
                    found += readers[0 if up else 1](self.conn, refs)
            here = set(frontier)
            found = [
                e
                for e in found
                if (e[1] if up else e[0]) in here and (self.keep is None or self.keep(e))
            ]
            if self.root_time is not None:
                self.describe({e[0] if up else e[1] for e in found})
            nxt: list[str] = []
            for e in found:
                far = e[0] if up else e[1]
                if not self._in_time(far, up):
                    continue
                if far not in self.order:
                    if len(self.order) >= limit:
                        return True
                    self.order[far] = None
                if far not in seen:
                    seen.add(far)
                    nxt.append(far)
                    if reached is not None:
                        reached.append(far)
                edges[e] = None
            frontier, level = nxt, level + 1
        return False


def _stage(value: str) -> str:
    stages = {s.lower(): s for s in STAGES}
    stage = stages.get(str(value).lower())
    if stage is None:
        raise InvalidInput(
            f"Stage {check.short_repr(value)} is not a stage.{did_you_mean(str(value), STAGES)}",
            hint=f"Stages: {', '.join(STAGES)}.",
        )
    return stage
