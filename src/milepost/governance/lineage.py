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
    direction).
    """

    root: str
    nodes: tuple[LineageNode, ...]
    edges: tuple[LineageEdge, ...]
    direction: str = "both"
    depth: int | None = None
    truncated: bool = False
    max_nodes: int = MAX_NODES

    def node(self, key: str) -> LineageNode:
        """The node with this key (KeyError when it is not in the graph)."""
        for n in self.nodes:
            if n.key == key:
                return n
        raise KeyError(key)

    def _walk(self, key: str | None, upstream: bool) -> list[LineageNode]:
        start = self.root if key is None else key
        self.node(start)  # KeyError for a key outside the graph
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
        by_key = {n.key: n for n in self.nodes}
        return [by_key[k] for k in order if k in by_key]

    def upstream(self, key: str | None = None) -> list[LineageNode]:
        """Every node ``key`` (default: the root) was made from, nearest first."""
        return self._walk(key, upstream=True)

    def downstream(self, key: str | None = None) -> list[LineageNode]:
        """Every node made from ``key`` (default: the root), nearest first."""
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
            "nodes": [n.to_dict() for n in self.nodes],
            "edges": [e.to_dict() for e in self.edges],
        }

    def __repr__(self) -> str:
        cut = ", truncated" if self.truncated else ""
        return f"LineageGraph({self.root}: {len(self.nodes)} nodes, {len(self.edges)} edges{cut})"


def _trains(edge: read.Edge) -> bool:
    """Whether an edge carries training data forward (for ``models_trained_on``)."""
    source_kind = read.split_key(edge[0])[0]
    if source_kind == "model_version":  # a model is not another model's training data
        return False
    if edge[2] in read.DERIVATION:
        return True
    target_kind = read.split_key(edge[1])[0]
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
            k = read.key(kind, value)
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
            if nodes_.describe(conn, [read.key(kind, text)]):
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
        first, with ``truncated=True`` on the result.

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
            order: dict[str, None] = {root: None}
            edges: dict[read.Edge, None] = {}
            truncated = False
            for up in (True, False):
                if direction == ("downstream" if up else "upstream"):
                    continue
                cut = self._walk(conn, root, up, depth, limit, order, edges, None)
                truncated = truncated or cut
            found = nodes_.describe(conn, order)
        out_nodes = []
        for k in order:
            kind, ref_ = read.split_key(k)
            label, attrs = found.get(k, (ref_, {"missing": True}))
            out_nodes.append(LineageNode(kind, ref_, label, attrs))
        return LineageGraph(
            root=root,
            nodes=tuple(out_nodes),
            edges=tuple(LineageEdge(*e) for e in edges),
            direction=direction,
            depth=depth,
            truncated=truncated,
            max_nodes=limit,
        )

    @staticmethod
    def _walk(
        conn: Connection,
        root: str,
        up: bool,
        depth: int | None,
        limit: int,
        order: dict[str, None],
        edges: dict[read.Edge, None],
        keep: Any,
    ) -> bool:
        """Breadth-first from ``root`` one way, adding to ``order`` and ``edges``; True when
        it stopped at ``limit`` nodes. ``keep`` (an edge predicate) filters the edges."""
        frontier, level, seen = [root], 0, {root}
        while frontier and (depth is None or level < depth):
            by_kind: dict[str, list[str]] = {}
            for k in frontier:
                kind, ref = read.split_key(k)
                by_kind.setdefault(kind, []).append(ref)
            found: list[read.Edge] = []
            for kind, refs in by_kind.items():
                readers = read.READERS.get(kind)
                if readers is not None:
                    found += readers[0 if up else 1](conn, refs)
            here = set(frontier)
            nxt: list[str] = []
            for e in found:
                near, far = (e[1], e[0]) if up else (e[0], e[1])
                if near not in here or (keep is not None and not keep(e)):
                    continue
                if far not in order:
                    if len(order) >= limit:
                        return True
                    order[far] = None
                if far not in seen:
                    seen.add(far)
                    nxt.append(far)
                edges[e] = None
            frontier, level = nxt, level + 1
        return False

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
        wanted = _stage(stage) if stage is not None else None
        root = self.resolve(dataset if "/" in dataset or "@" in dataset else f"{dataset}@latest")
        if read.split_key(root)[0] != "dataset_version":
            raise InvalidInput(
                f"models_trained_on takes a dataset version (NAME@VERSION), got {dataset!r}.",
                hint="For example models_trained_on('customers@4', stage='Production').",
            )
        with self._db.read() as conn:
            order: dict[str, None] = {root: None}
            self._walk(conn, root, False, None, 50 * self.max_nodes, order, {}, _trains)
            models = [k for k in order if k.startswith("model_version:")]
            found = nodes_.describe(conn, models)
        out = [
            LineageNode("model_version", read.split_key(k)[1], *found[k])
            for k in models
            if k in found and (wanted is None or found[k][1].get("stage") == wanted)
        ]
        return sorted(out, key=lambda n: (n.ref.rpartition("/")[0], int(n.ref.rpartition("/")[2])))


def _stage(value: str) -> str:
    stages = {s.lower(): s for s in STAGES}
    stage = stages.get(str(value).lower())
    if stage is None:
        raise InvalidInput(
            f"Stage {check.short_repr(value)} is not a stage.{did_you_mean(str(value), STAGES)}",
            hint=f"Stages: {', '.join(STAGES)}.",
        )
    return stage
