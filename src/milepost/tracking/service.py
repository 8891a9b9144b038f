"""Tracking: experiments, runs, params, metrics, tags and artifacts.

The service validates input (with the checks in ``_checks``, which the remote client
shares), captures the environment, decides run liveness and moves artifact bytes (the
paths planned in ``_artifacts``); :class:`~milepost.tracking.backends.sql.SqlTrackingStore`
persists.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from typing import IO, TYPE_CHECKING, Any

from milepost import _validate as check
from milepost._actor import ActorAttribute
from milepost.errors import InvalidInput, NotFound
from milepost.stores.paths import safe_relpath
from milepost.tracking import _checks, _names
from milepost.tracking._artifacts import (
    artifact_files,
    bytes_target,
    download_all,
    download_target,
    file_target,
    list_prefix,
)
from milepost.tracking._checks import experiment_name, experiment_ref, validate_key
from milepost.tracking._filter import parse_filter, parse_order_by
from milepost.tracking._values import int64, metric_value
from milepost.tracking._writer import MetricWriter, write_isolating
from milepost.tracking.backends.sql import (
    SqlTrackingStore,
    decode_page_token,
    encode_page_token,
    now_ms,
    query_key,
)
from milepost.tracking.environment import RunOrigin, process_alive, process_info
from milepost.tracking.models import (
    ArtifactInfo,
    Environment,
    Experiment,
    Metric,
    PagedList,
    Run,
    RunStatus,
)

if TYPE_CHECKING:
    import os
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from milepost.config import Settings
    from milepost.stores.blobs import BlobRef, BlobStore
    from milepost.stores.metadata import MetadataStore

__all__ = ["StaleRun", "TrackingService", "artifact_files", "download_target"]

log = logging.getLogger("milepost.tracking")


@dataclass(frozen=True)
class StaleRun:
    """A RUNNING run whose owning process is gone, and why (see ``reap_stale_runs``)."""

    run_id: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


_run_id = check.run_id


class TrackingService:
    """Everything tracking does, for the Python API, the CLI and the server."""

    actor = ActorAttribute()

    def __init__(self, db: MetadataStore, blobs: BlobStore, settings: Settings) -> None:
        self.db = db
        self.blobs = blobs
        self.settings = settings
        self.actor = settings.actor()
        self.store = SqlTrackingStore(db)
        self._owned: dict[str, int] = {}  # live runs this process started -> experiment id
        self._writable: dict[str, int] = {}  # runs checked for metric logging -> experiment
        self._keys_ok: set[str] = set()
        self._lock = threading.Lock()
        self.writer = MetricWriter(
            self.store,
            flush_interval=settings.metric_flush_interval,
            batch_size=settings.metric_batch_size,
            heartbeat_interval=settings.heartbeat_interval,
            live_runs=lambda: list(self._owned),
            retry_for=settings.metric_flush_timeout,
            max_pending=settings.metric_max_pending,
        )

    # -- experiments ----------------------------------------------------------------

    def create_experiment(self, name: str, *, description: str | None = None) -> Experiment:
        """Create an experiment. Raises AlreadyExists."""
        return self.store.create_experiment(
            experiment_name(name),
            description=check.optional_text(description, "Experiment description"),
            actor=self.actor,
        )

    def get_or_create_experiment(self, name: str) -> Experiment:
        """The experiment named ``name``, created when missing."""
        return self.store.get_or_create_experiment(experiment_name(name), actor=self.actor)

    def get_experiment(self, ref: str | int) -> Experiment:
        """An experiment by name or numeric id. Raises NotFound (with close names)."""
        ref = experiment_ref(ref)
        experiment = None
        if isinstance(ref, int) or (
            ref.isascii() and ref.isdigit() and int(ref) <= check.INT64_MAX
        ):
            experiment = self.store.get_experiment(experiment_id=int(ref))
        if experiment is None and isinstance(ref, str):
            experiment = self.store.get_experiment(name=ref)
        if experiment is None:
            from milepost.errors import did_you_mean

            names = [e.name for e in self.store.list_experiments(include_deleted=True)]
            raise NotFound(
                f"Experiment {ref!r} does not exist.{did_you_mean(str(ref), names)}",
                hint="List them with `milepost experiments list`.",
            )
        return experiment

    def list_experiments(self, *, include_deleted: bool = False) -> list[Experiment]:
        """Experiments, oldest first."""
        check.boolean(include_deleted, "include_deleted")
        return self.store.list_experiments(include_deleted=include_deleted)

    def rename_experiment(self, ref: str | int, new_name: str) -> Experiment:
        """Rename an experiment, audited."""
        experiment = self.get_experiment(ref)
        return self.store.update_experiment(
            experiment.experiment_id,
            actor=self.actor,
            action="experiment.rename",
            name=experiment_name(new_name),
        )

    def delete_experiment(self, ref: str | int, *, reason: str | None = None) -> Experiment:
        """Soft-delete an experiment (its runs stay readable), audited."""
        reason = check.optional_text(reason, "reason")
        experiment = self.get_experiment(ref)
        return self.store.update_experiment(
            experiment.experiment_id,
            actor=self.actor,
            action="experiment.delete",
            lifecycle_stage="deleted",
            reason=reason,
        )

    def restore_experiment(self, ref: str | int) -> Experiment:
        """Undo a delete, audited."""
        experiment = self.get_experiment(ref)
        return self.store.update_experiment(
            experiment.experiment_id,
            actor=self.actor,
            action="experiment.restore",
            lifecycle_stage="active",
        )

    # -- runs -----------------------------------------------------------------------

    def start_run(
        self,
        *,
        experiment: str | int | None = None,
        run_name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        parent_run_id: str | None = None,
        origin: RunOrigin | None = None,
    ) -> Run:
        """Create a RUNNING run owned by this process.

        ``origin`` (the platform server, for a remote client) records the run as started
        by that client's process and environment; the client then owns it.

        Raises:
            NotFound: ``parent_run_id`` does not exist.
            InvalidInput: a bad name or tag.
        """
        ref, clean_tags = _checks.start_args(experiment, run_name, tags, parent_run_id)
        if ref is None:
            exp = self.get_or_create_experiment(self.settings.experiment)
        elif isinstance(ref, int):
            exp = self.get_experiment(ref)
        else:
            exp = self.get_or_create_experiment(ref)
        if parent_run_id is not None and self.store.get_run(parent_run_id) is None:
            raise NotFound(f"Parent run {parent_run_id} does not exist.")
        run_id = uuid.uuid4().hex
        if origin is None:
            origin = RunOrigin.here()
        env, git, proc = origin.env, origin.git, origin.process
        start = now_ms()
        values: dict[str, Any] = {
            "run_id": run_id,
            "experiment_id": exp.experiment_id,
            "name": run_name or _names.run_name(run_id),
            "status": RunStatus.RUNNING.value,
            "start_time": start,
            "user": self.actor,
            "parent_run_id": parent_run_id,
            "env_hash": env.env_hash,
            "source": origin.source[:1024],
            "git_commit": git.commit if git else None,
            "git_dirty": git.dirty if git else None,
            "git_root": git.root if git else None,
            "owner_host": proc.host,
            "owner_pid": proc.pid,
            "owner_started": proc.started,
            "heartbeat_at": start,
        }
        self.store.create_run(values, env=env, tags=clean_tags, actor=self.actor)
        with self._lock:
            self._writable[run_id] = exp.experiment_id
        if origin.local:
            from milepost.tracking import _active  # imports this module: not at the top

            _active.note_started(run_id)
            with self._lock:
                self._owned[run_id] = exp.experiment_id
            self.writer.start()
        # Built from what was just written rather than read back (run creation is hot).
        return Run(
            run_id=run_id,
            experiment_id=exp.experiment_id,
            name=values["name"],
            status=RunStatus.RUNNING,
            start_time=start,
            end_time=None,
            user=self.actor,
            parent_run_id=parent_run_id,
            source=values["source"],
            git_commit=values["git_commit"],
            git_dirty=values["git_dirty"],
            error=None,
            env_hash=env.env_hash,
            tags=dict(sorted(clean_tags.items())),
        )

    def end_run(
        self, run_id: str, status: RunStatus | str = RunStatus.FINISHED, *, error: str | None = None
    ) -> None:
        """Flush the run's metrics and give it a terminal status, audited."""
        target = _checks.end_args(run_id, status, error)
        self.writer.flush()
        self.store.end_run(
            run_id,
            status=target,
            end_time=now_ms(),
            error=_checks.storable(error),
            actor=self.actor,
        )
        with self._lock:
            self._owned.pop(run_id, None)

    def get_run(self, run_id: str) -> Run:
        """A run with its params, latest metrics and tags. Raises NotFound.

        A read never writes: a RUNNING run whose process is gone stays RUNNING here until
        :meth:`reap_stale_runs` marks it KILLED.
        """
        _run_id(run_id)
        run = self.store.get_run(run_id)
        if run is None:
            raise NotFound(
                f"Run {run_id!r} does not exist.",
                hint="Find run ids with `milepost runs list`.",
            )
        return run

    def delete_run(self, run_id: str) -> None:
        """Soft-delete a run (hidden from searches), audited."""
        _run_id(run_id)
        self.store.set_run_lifecycle(run_id, "deleted", actor=self.actor)

    def restore_run(self, run_id: str) -> None:
        """Undo a delete, audited."""
        _run_id(run_id)
        self.store.set_run_lifecycle(run_id, "active", actor=self.actor)

    def get_environment(self, env_hash: str) -> Environment:
        """The environment a run recorded. Raises NotFound."""
        check.name(env_hash, "Environment hash", max_length=64)
        env = self.store.get_environment(env_hash)
        if env is None:
            raise NotFound(f"Environment {env_hash} does not exist.")
        return env

    def search_runs(
        self,
        experiments: str | int | Sequence[str | int] | None = None,
        *,
        filter: str | None = None,
        order_by: str | Sequence[str] | None = None,
        max_results: int = 100,
        page_token: str | None = None,
        include_deleted: bool = False,
    ) -> PagedList[Run]:
        """Runs matching a filter, in order, one page at a time.

        Args:
            experiments: names or ids; default: every active experiment.
            filter: e.g. ``"metrics.acc > 0.9 AND params.model = 'gbm'"`` (see ``_filter``).
            order_by: e.g. ``["metrics.acc DESC"]``; ties and the default order by newest.
            max_results: page size (1-50,000).
            page_token: ``token`` of the previous page.

        Raises:
            InvalidFilter: the filter or order is malformed (the message points at it).
        """
        _checks.search_args(max_results, include_deleted, filter, order_by, page_token)
        max_results = int(max_results)
        comparisons = parse_filter(filter)
        order = parse_order_by(order_by)
        if experiments is None:
            ids = [e.experiment_id for e in self.list_experiments()]
        else:
            ids = [
                self.get_experiment(r).experiment_id for r in _checks.experiment_refs(experiments)
            ]
        if not ids:
            return PagedList([], None)
        key = query_key(sorted(ids), filter, order_by, max_results, include_deleted)
        offset = decode_page_token(page_token, key) if page_token else 0
        found, more = self.store.search_runs(
            ids,
            comparisons,
            order,
            max_results=max_results,
            offset=offset,
            include_deleted=include_deleted,
        )
        token = encode_page_token(offset + max_results, key) if more else None
        return PagedList(found, token)

    def reap_stale_runs(
        self,
        experiments: str | int | Sequence[str | int] | None = None,
        *,
        run_ids: Sequence[str] | None = None,
        dry_run: bool = False,
    ) -> list[StaleRun]:
        """Mark KILLED the RUNNING runs whose owning process is gone, audited.

        The one place stale runs are reaped: reads (:meth:`get_run`, :meth:`search_runs`)
        never write, and no writer reaps on the side. ``milepost runs reap`` calls this
        (and the scheduler will, on a schedule). On this host a run is stale when its
        process (pid and start time) no longer exists; from another host, when its
        heartbeat is older than ``stale_run_timeout``. Runs this process owns are never
        stale. Reaping twice, or racing another reaper or the run's own end, marks each
        run once.

        Args:
            experiments: names or ids to look in; default every experiment.
            run_ids: only these runs.
            dry_run: only report what would be marked.

        Returns:
            The stale runs and why, oldest owner first as the store lists them (with
            ``dry_run`` those that would be marked; else those this call marked).
        """
        check.boolean(dry_run, "dry_run")
        refs = None if experiments is None else _checks.experiment_refs(experiments)
        run_ids = _checks.run_ids(run_ids)
        ids: list[int] | None = None
        if refs is not None:
            ids = [self.get_experiment(r).experiment_id for r in refs]
        stale = self._stale_runs(experiment_ids=ids, run_ids=run_ids)
        if dry_run:
            return stale
        reaped = []
        for run in stale:
            if self.store.end_run(
                run.run_id,
                status=RunStatus.KILLED,
                end_time=now_ms(),
                error=f"Marked KILLED: {run.reason}; metrics not flushed before that were lost.",
                actor=self.actor,
                reason="stale run detected",
                only_if_running=True,
            ):
                reaped.append(run)
        return reaped

    def _stale_runs(
        self, *, experiment_ids: Sequence[int] | None, run_ids: Sequence[str] | None
    ) -> list[StaleRun]:
        """The RUNNING runs whose owner is gone, and why (reads only)."""
        me = process_info()
        now = now_ms()
        stale: list[StaleRun] = []
        for row in self.store.running_owners(experiment_ids=experiment_ids, run_ids=run_ids):
            if row.run_id in self._owned:
                continue
            if row.owner_host == me.host:
                if row.owner_pid is not None and not process_alive(
                    int(row.owner_pid), row.owner_started
                ):
                    stale.append(
                        StaleRun(
                            row.run_id,
                            f"process {row.owner_pid} on {me.host} ended without ending the run",
                        )
                    )
            else:
                beat = row.heartbeat_at if row.heartbeat_at is not None else row.start_time
                if now - beat > self.settings.stale_run_timeout * 1000:
                    stale.append(
                        StaleRun(
                            row.run_id,
                            f"no heartbeat from {row.owner_host} for {(now - beat) / 1000:.0f} s",
                        )
                    )
        return stale

    # -- params, tags, metrics --------------------------------------------------------

    def log_params(self, run_id: str, items: Mapping[str, Any]) -> None:
        """Log params (immutable: a different value for a logged key is a Conflict)."""
        _run_id(run_id)
        clean = _checks.params(items)
        if clean:
            self.store.log_params(run_id, clean)

    def set_tags(self, run_id: str, items: Mapping[str, Any]) -> None:
        """Set tags (mutable)."""
        _run_id(run_id)
        clean = _checks.values(items, "tag")
        if clean:
            self.store.set_tags(run_id, clean)

    def delete_tag(self, run_id: str, key: str) -> None:
        """Remove a tag."""
        self.store.delete_tag(_run_id(run_id), validate_key(key, "tag"))

    def _metric_experiment(self, run_id: str) -> int:
        exp = self._writable.get(_run_id(run_id))
        if exp is not None:
            return exp
        found = self.store.run_experiments([run_id]).get(run_id)
        if found is None:
            raise NotFound(f"Run {run_id!r} does not exist; cannot log metrics to it.")
        if found[2] != "active":
            raise InvalidInput(f"Run {run_id} is deleted; restore it before logging.")
        with self._lock:
            self._writable[run_id] = found[0]
        return found[0]

    def log_metric(
        self,
        run_id: str,
        key: str,
        value: Any,
        *,
        step: int | None = None,
        timestamp: int | None = None,
    ) -> None:
        """Queue one metric value; it is written in the background (see ``flush``).

        Args:
            run_id: the run.
            key: the metric's name.
            value: a real number; NaN and infinities are kept (see ``_values``).
            step: a whole number within a signed 64-bit integer (default 0).
            timestamp: milliseconds since the epoch, within a signed 64-bit integer
                (default now).

        Raises:
            InvalidInput: a bad name, value, step or timestamp (nothing is queued).
            NotFound: the run does not exist.
        """
        exp = self._writable.get(run_id) if type(run_id) is str else None
        if exp is None:
            exp = self._metric_experiment(run_id)
        if type(key) is not str or key not in self._keys_ok:
            validate_key(key, "metric")
            self._keys_ok.add(key)
        if type(value) is not float:
            value = metric_value(key, value)
        self.writer.append(
            (
                run_id,
                exp,
                key,
                value,
                int(time.time() * 1000) if timestamp is None else int64("timestamp", timestamp),
                0 if step is None else int64("step", step),
            )
        )

    def log_metrics(
        self,
        run_id: str,
        values: Mapping[str, Any],
        *,
        step: int | None = None,
        timestamp: int | None = None,
    ) -> None:
        """Queue several metrics at one step; all are checked before any is queued."""
        exp = self._metric_experiment(run_id)
        pairs, ts, st = _checks.metric_batch(values, step, timestamp, self._keys_ok)
        self.writer.extend([(run_id, exp, key, value, ts, st) for key, value in pairs])

    def flush(self) -> None:
        """Block until every queued metric value is committed."""
        self.writer.flush()

    def write_metrics(self, rows: Sequence[tuple[str, str, Any, Any, Any]]) -> int:
        """Write ``(run_id, key, value, timestamp, step)`` rows now, not queued: durable
        when this returns (the platform server's batched metric log).

        Every row is checked first (nothing is written when one is bad). Rows of runs that
        do not exist, and rows the database refuses, are dropped and counted on their
        runs, as the background writer does (see ``_writer``).

        Returns:
            How many rows were dropped.

        Raises:
            InvalidInput: a bad name, value, step or timestamp.
        """
        clean: list[tuple[str, str, float, int, int]] = []
        for run_id, key, value, timestamp, step in rows:
            _run_id(run_id)
            if key not in self._keys_ok:
                validate_key(key, "metric")
                self._keys_ok.add(key)
            clean.append(
                (
                    run_id,
                    key,
                    metric_value(key, value),
                    int64("timestamp", timestamp),
                    int64("step", step),
                )
            )
        known = self.store.run_experiments({r[0] for r in clean})
        ready = [(r, known[r], k, v, t, s) for r, k, v, t, s in clean if r in known]
        dropped = len(clean) - len(ready)
        if dropped:
            log.warning("Dropped %d metric values of runs that do not exist.", dropped)
        return dropped + write_isolating(
            self.store, [(r, e[0], k, v, t, s) for r, e, k, v, t, s in ready]
        )

    def heartbeat(self, run_ids: Sequence[str]) -> None:
        """Record that the owner of these RUNNING runs (a remote client) is alive."""
        check.string_list(run_ids, "run_ids")
        self.store.heartbeat([_run_id(r) for r in run_ids])

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every value of a metric (flushing this process's queue first)."""
        validate_key(key, "metric")
        self.writer.flush()
        self.get_run(run_id)
        return self.store.metric_history(run_id, key)

    # -- artifacts ------------------------------------------------------------------

    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> ArtifactInfo:
        """Store one file as ``artifact_path/<file name>``."""
        _run_id(run_id)
        path, rel = file_target(local_path, artifact_path)
        return self._record(run_id, rel, self.blobs.put_file(path))

    def log_artifacts(
        self, run_id: str, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> list[ArtifactInfo]:
        """Store a directory tree. Links that leave it are refused before anything is stored."""
        _run_id(run_id)
        infos = []
        for full, rel in artifact_files(local_dir, artifact_path):
            ref = self.blobs.put_file(full)
            infos.append(ArtifactInfo(rel, ref.digest, ref.size))
        self.store.record_artifacts(run_id, infos)
        return infos

    def log_bytes(self, run_id: str, data: bytes, artifact_file: str) -> ArtifactInfo:
        """Store bytes as one artifact file (used by log_text, log_dict, log_figure)."""
        _run_id(run_id)
        rel = bytes_target(data, artifact_file)
        return self._record(run_id, rel, self.blobs.put_bytes(data))

    def log_file(self, run_id: str, local_path: Path, artifact_file: str) -> ArtifactInfo:
        """Store one local file as the artifact ``artifact_file`` (an exact path; the
        platform server's upload, spooled to disk, lands here)."""
        _run_id(run_id)
        rel = safe_relpath(artifact_file)
        self.get_run(run_id)
        return self._record(run_id, rel, self.blobs.put_file(local_path))

    def _record(self, run_id: str, rel: str, ref: BlobRef) -> ArtifactInfo:
        info = ArtifactInfo(rel, ref.digest, ref.size)
        self.store.record_artifacts(run_id, [info])
        return info

    def open_artifact(self, run_id: str, path: str) -> tuple[ArtifactInfo, IO[bytes]]:
        """One artifact file and a reader of its bytes (verified as read; close it).

        Raises:
            NotFound: the run has no such artifact.
        """
        info = self._artifact(run_id, path)
        return info, self.blobs.open(info.digest)

    def _artifact(self, run_id: str, path: str) -> ArtifactInfo:
        _run_id(run_id)
        rel = safe_relpath(path)
        match = [a for a in self.store.list_artifacts(run_id, rel) if a.path == rel]
        if not match:
            raise NotFound(
                f"Run {run_id} has no artifact {rel!r}.",
                hint=f"List them with `milepost runs show {run_id}`.",
            )
        return match[0]

    def list_artifacts(self, run_id: str, path: str = "") -> list[ArtifactInfo]:
        """A run's artifacts under ``path`` (all by default)."""
        _run_id(run_id)
        prefix = list_prefix(path)
        self.get_run(run_id)
        return self.store.list_artifacts(run_id, prefix)

    def read_artifact(self, run_id: str, path: str) -> bytes:
        """The bytes of one artifact file. Raises NotFound."""
        return self.blobs.get_bytes(self._artifact(run_id, path).digest)

    def download_artifacts(
        self, run_id: str, path: str = "", dst: str | os.PathLike[str] = "."
    ) -> Path:
        """Copy artifacts under ``path`` into ``dst`` keeping their relative paths.

        Every destination is checked before anything is written (see
        :func:`~milepost.tracking._artifacts.download_all`).

        Raises:
            InvalidInput: ``dst`` or a path under it cannot take the artifacts.
            NotFound: the run has no artifacts under ``path``.
        """
        return download_all(
            run_id,
            path,
            dst,
            listed=lambda: self.list_artifacts(run_id, path),
            fetch=lambda item, target: self.blobs.download(item.digest, target),
        )

    def close(self) -> None:
        """Flush metrics and stop the background writer."""
        self.writer.close()
