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

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from milepost._records import record_dict

if TYPE_CHECKING:
    from milepost.stores.metadata import MetadataStore

__all__ = [
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


@dataclass(frozen=True)
class LineageNode:
    """One recorded object: ``kind``, its ``ref`` and a short label; ``attrs`` holds what a
    reader wants at a glance (a model version's stage, a run's status, a gate's status,
    times in ms)."""

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


@dataclass(frozen=True)
class LineageGraph:
    """The part of the lineage graph around ``root`` (a node key)."""

    root: str
    nodes: tuple[LineageNode, ...]
    edges: tuple[LineageEdge, ...]

    def node(self, key: str) -> LineageNode:
        """The node with this key (KeyError when it is not in the graph)."""
        for n in self.nodes:
            if n.key == key:
                return n
        raise KeyError(key)

    def upstream(self, key: str | None = None) -> list[LineageNode]:
        """Every node ``key`` (default: the root) was made from, nearest first."""
        raise NotImplementedError

    def downstream(self, key: str | None = None) -> list[LineageNode]:
        """Every node made from ``key`` (default: the root), nearest first."""
        raise NotImplementedError

    def of_kind(self, kind: str) -> list[LineageNode]:
        """The nodes of one kind."""
        return [n for n in self.nodes if n.kind == kind]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``root``, ``nodes``, ``edges``."""
        return {
            "root": self.root,
            "nodes": [n.to_dict() for n in self.nodes],
            "edges": [e.to_dict() for e in self.edges],
        }


class LineageService:
    """Reads the lineage graph from the metadata store (it writes nothing)."""

    def __init__(self, db: MetadataStore) -> None:
        self._db = db

    def resolve(self, ref: str) -> str:
        """A node key from what a user types: ``models:/NAME/3``, ``runs:/ID``,
        ``datasets:/NAME@4`` or ``NAME@4``, ``endpoints:/NAME``, ``pipelines:/RUN_ID``,
        or ``KIND:REF``. Raises NotFound (with close names) when nothing has that ref."""
        raise NotImplementedError

    def graph(
        self, ref: str, *, direction: Direction = "both", depth: int | None = None
    ) -> LineageGraph:
        """The graph around ``ref`` (anything :meth:`resolve` takes), walked upstream,
        downstream or both, up to ``depth`` edges (None: all)."""
        raise NotImplementedError

    def models_trained_on(self, dataset: str, *, stage: str | None = None) -> list[LineageNode]:
        """Model versions whose training data was ``dataset`` (``NAME@VERSION``), directly or
        through a run, a training set or a pipeline; ``stage`` filters (``Production``)."""
        raise NotImplementedError
