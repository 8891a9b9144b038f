"""Tracking over HTTP: the remote twin of :class:`~milepost.tracking.TrackingService`.

Same methods, arguments, records and exceptions as the embedded service, so
``milepost.Client``, ``milepost.start_run()``/``log_metric()`` and ``milepost runs ...``
work unchanged with ``MILEPOST_URL`` set. Arguments are checked here with the embedded
service's own checks (a bad one raises before any request); the server checks again.

Metric logging stays batched: ``log_metric`` appends to one background
:class:`~milepost._batcher.Batcher` per process (the embedded writer's), and each batch is
one ``POST /metrics`` that the server writes in one transaction before answering, so
``flush()`` (and ``end_run``) returning means durable. While the server is unreachable
the values stay queued and are retried with backoff; ``flush()`` raises
``BackendUnavailable`` after ``metric_flush_timeout`` seconds. A batch the server refuses
for another reason (a revoked token: 401/403) is not retried by ``flush()``, which raises
that error; the values stay queued. The batcher also sends the heartbeats of the runs this
process started, so the server's reaper knows they are alive.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import tempfile
import threading
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from milepost import _validate as check
from milepost._batcher import Backoff, Batcher, Overflow
from milepost._records import record_from_dict
from milepost.errors import BackendUnavailable, IntegrityViolation, InvalidInput, NotFound
from milepost.stores.blobs import writing_to
from milepost.stores.paths import safe_relpath
from milepost.tracking import _active, _checks
from milepost.tracking._artifacts import (
    artifact_files,
    bytes_target,
    download_all,
    file_target,
    list_prefix,
)
from milepost.tracking._checks import experiment_name, experiment_ref, validate_key
from milepost.tracking._values import int64, metric_value
from milepost.tracking.environment import RunOrigin
from milepost.tracking.models import (
    ArtifactInfo,
    Environment,
    Experiment,
    Metric,
    PagedList,
    Run,
    RunStatus,
)
from milepost.tracking.service import StaleRun

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from pathlib import Path

    from milepost.client._runtime import RemoteRuntime

__all__ = ["RemoteTracking"]

_run_id = check.run_id
_CHUNK = 1 << 20
_MAX_POST_ROWS = 20_000  # metric values per POST

Row = tuple[str, str, float, int, int]  # run_id, key, value, timestamp, step


def _seg(value: str) -> str:
    """One path segment, quoted (a name may hold anything, '/' and '..' included)."""
    quoted = quote(value, safe="")
    return quoted.replace(".", "%2E") if quoted in (".", "..") else quoted


def _runs(run_id: str) -> str:
    """The path of a run; an id no run can have is the same NotFound as embedded."""
    try:
        quoted = _seg(run_id)
    except UnicodeEncodeError:
        quoted = ""
    if not quoted or check.unsafe_char(run_id) is not None:
        raise NotFound(
            f"Run {run_id!r} does not exist.", hint="Find run ids with `milepost runs list`."
        )
    return f"/runs/{quoted}"


def _wire(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


class RemoteTracking:
    """Experiments, runs, params, metrics, tags and artifacts on a ``milepost server``."""

    def __init__(self, runtime: RemoteRuntime) -> None:
        self.runtime = runtime
        self.transport = runtime.transport
        self.settings = runtime.settings
        self._owned: dict[str, int] = {}  # live runs this process started (heartbeats)
        self._writable: dict[str, int] = {}  # runs checked for metric logging
        self._keys_ok: set[str] = set()
        self._lock = threading.Lock()
        self._last_beat = -math.inf
        interval = self.settings.metric_flush_interval
        retry_for = self.settings.metric_flush_timeout
        self._batcher: Batcher[Row] = Batcher(
            self._send,
            name="milepost-remote-metrics",
            what="metric values",
            hint=f"Check that the Milepost server at {self.transport.url} is up "
            "(MILEPOST_URL) and your token valid (MILEPOST_TOKEN), then call milepost.flush().",
            interval=interval,
            batch_size=self.settings.metric_batch_size,
            max_batch=_MAX_POST_ROWS,
            max_pending=self.settings.metric_max_pending,
            overflow=Overflow.BLOCK,
            block_for=retry_for,
            retry_for=retry_for,
            retry_on=(BackendUnavailable,),
            backoff=Backoff(first=2 * interval, cap=30.0),
            on_tick=self._heartbeat,
            on_fork=self._reset_in_child,
        )

    # -- experiments ----------------------------------------------------------------

    def _experiment_path(self, ref: Any) -> tuple[str, dict[str, str] | None]:
        checked = experiment_ref(ref)
        if isinstance(checked, int):
            return f"/experiments/{checked}", {"by": "id"}
        return f"/experiments/{_seg(checked)}", None

    def create_experiment(self, name: str, *, description: str | None = None) -> Experiment:
        """Create an experiment. Raises AlreadyExists."""
        body = {
            "name": experiment_name(name),
            "description": check.optional_text(description, "Experiment description"),
        }
        return record_from_dict(
            Experiment, self.transport.request("POST", "/experiments", json=body)
        )

    def get_or_create_experiment(self, name: str) -> Experiment:
        """The experiment named ``name``, created when missing."""
        body = {"name": experiment_name(name), "get_or_create": True}
        return record_from_dict(
            Experiment, self.transport.request("POST", "/experiments", json=body)
        )

    def get_experiment(self, ref: str | int) -> Experiment:
        """An experiment by name or numeric id. Raises NotFound (with close names)."""
        path, params = self._experiment_path(ref)
        return record_from_dict(Experiment, self.transport.request("GET", path, params=params))

    def list_experiments(self, *, include_deleted: bool = False) -> list[Experiment]:
        """Experiments, oldest first."""
        check.boolean(include_deleted, "include_deleted")
        found = self.transport.request(
            "GET", "/experiments", params={"include_deleted": include_deleted}
        )
        return [record_from_dict(Experiment, e) for e in found["items"]]

    def rename_experiment(self, ref: str | int, new_name: str) -> Experiment:
        """Rename an experiment, audited."""
        path, params = self._experiment_path(ref)
        body = {"name": experiment_name(new_name)}
        return record_from_dict(
            Experiment, self.transport.request("PATCH", path, json=body, params=params)
        )

    def delete_experiment(self, ref: str | int, *, reason: str | None = None) -> Experiment:
        """Soft-delete an experiment (its runs stay readable), audited."""
        reason = check.optional_text(reason, "reason")
        path, params = self._experiment_path(ref)
        params = {**(params or {}), "reason": reason} if reason is not None else params
        return record_from_dict(Experiment, self.transport.request("DELETE", path, params=params))

    def restore_experiment(self, ref: str | int) -> Experiment:
        """Undo a delete, audited."""
        path, params = self._experiment_path(ref)
        return record_from_dict(
            Experiment, self.transport.request("POST", f"{path}/restore", params=params)
        )

    # -- runs -----------------------------------------------------------------------

    def start_run(
        self,
        *,
        experiment: str | int | None = None,
        run_name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        parent_run_id: str | None = None,
    ) -> Run:
        """Create a RUNNING run owned by this process (it sends the run's heartbeats).

        Raises:
            NotFound: ``parent_run_id`` does not exist.
            InvalidInput: a bad name or tag.
        """
        ref, clean_tags = _checks.start_args(experiment, run_name, tags, parent_run_id)
        origin = RunOrigin.here()
        git = origin.git
        body = {
            "experiment": self.settings.experiment if ref is None else ref,
            "run_name": run_name,
            "tags": clean_tags,
            "parent_run_id": parent_run_id,
            "origin": {
                "python_version": origin.env.python_version,
                "platform": origin.env.platform,
                "packages": list(origin.env.packages),
                "source": origin.source[:1024],
                "host": origin.process.host,
                "pid": origin.process.pid,
                "started": origin.process.started,
                "git_root": git.root if git else None,
                "git_commit": git.commit if git else None,
                "git_dirty": git.dirty if git else None,
            },
        }
        run = record_from_dict(Run, self.transport.request("POST", "/runs", json=body))
        _active.note_started(run.run_id)
        with self._lock:
            self._owned[run.run_id] = run.experiment_id
            self._writable[run.run_id] = run.experiment_id
        self._batcher.start()  # heartbeats
        return run

    def end_run(
        self, run_id: str, status: RunStatus | str = RunStatus.FINISHED, *, error: str | None = None
    ) -> None:
        """Flush the run's metrics and give it a terminal status, audited."""
        target = _checks.end_args(run_id, status, error)
        if error is not None:
            error = error.encode("utf-8", "backslashreplace").decode("utf-8")
        self.flush()
        self.transport.request(
            "POST", f"{_runs(run_id)}/end", json={"status": target.value, "error": error}
        )
        with self._lock:
            self._owned.pop(run_id, None)

    def get_run(self, run_id: str) -> Run:
        """A run with its params, latest metrics and tags. Raises NotFound."""
        _run_id(run_id)
        return record_from_dict(Run, self.transport.request("GET", f"{_runs(run_id)}"))

    def delete_run(self, run_id: str) -> None:
        """Soft-delete a run (hidden from searches), audited."""
        _run_id(run_id)
        self.transport.request("DELETE", f"{_runs(run_id)}")

    def restore_run(self, run_id: str) -> None:
        """Undo a delete, audited."""
        _run_id(run_id)
        self.transport.request("POST", f"{_runs(run_id)}/restore")

    def get_environment(self, env_hash: str) -> Environment:
        """The environment a run recorded. Raises NotFound."""
        check.name(env_hash, "Environment hash", max_length=64)
        return record_from_dict(
            Environment, self.transport.request("GET", f"/environments/{_seg(env_hash)}")
        )

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
        """Runs matching a filter, in order, one page at a time (paged by the server).

        Raises:
            InvalidFilter: the filter or order is malformed (the message points at it).
        """
        orders = _checks.search_args(max_results, include_deleted, filter, order_by, page_token)
        names: list[str] = []
        ids: list[int] = []
        if experiments is not None:
            for checked in _checks.experiment_refs(experiments):
                (ids if isinstance(checked, int) else names).append(checked)  # type: ignore[arg-type]
            if not names and not ids:
                return PagedList([], None)
        params: dict[str, Any] = {
            "experiment": names or None,
            "experiment_id": ids or None,
            "filter": filter,
            "order_by": orders,
            "max_results": int(max_results),
            "page_token": page_token,
            "include_deleted": include_deleted,
        }
        page = self.transport.request("GET", "/runs", params=params)
        return PagedList([record_from_dict(Run, r) for r in page["items"]], page["next_page_token"])

    def reap_stale_runs(
        self,
        experiments: str | int | Sequence[str | int] | None = None,
        *,
        run_ids: Sequence[str] | None = None,
        dry_run: bool = False,
    ) -> list[StaleRun]:
        """Mark KILLED the RUNNING runs whose owning process is gone (on the server), audited."""
        check.boolean(dry_run, "dry_run")
        refs = None if experiments is None else _checks.experiment_refs(experiments)
        body = {"experiments": refs, "run_ids": _checks.run_ids(run_ids), "dry_run": dry_run}
        found = self.transport.request("POST", "/runs/reap", json=body)
        return [record_from_dict(StaleRun, s) for s in found["items"]]

    # -- params, tags, metrics --------------------------------------------------------

    def log_params(self, run_id: str, items: Mapping[str, Any]) -> None:
        """Log params (immutable: a different value for a logged key is a Conflict)."""
        _run_id(run_id)
        clean = _checks.params(items)
        if clean:
            self.transport.request("POST", f"{_runs(run_id)}/params", json={"values": clean})

    def set_tags(self, run_id: str, items: Mapping[str, Any]) -> None:
        """Set tags (mutable)."""
        _run_id(run_id)
        clean = _checks.values(items, "tag")
        if clean:
            self.transport.request("POST", f"{_runs(run_id)}/tags", json={"values": clean})

    def delete_tag(self, run_id: str, key: str) -> None:
        """Remove a tag."""
        _run_id(run_id)
        key = validate_key(key, "tag")
        self.transport.request("DELETE", f"{_runs(run_id)}/tags/{quote(key, safe='/')}")

    def _metric_experiment(self, run_id: str) -> int:
        exp = self._writable.get(_run_id(run_id))
        if exp is not None:
            return exp
        try:
            state = self.transport.request("GET", f"{_runs(run_id)}/state")
        except NotFound:
            raise NotFound(f"Run {run_id!r} does not exist; cannot log metrics to it.") from None
        if state["lifecycle_stage"] != "active":
            raise InvalidInput(f"Run {run_id} is deleted; restore it before logging.")
        with self._lock:
            self._writable[run_id] = int(state["experiment_id"])
        return int(state["experiment_id"])

    def log_metric(
        self,
        run_id: str,
        key: str,
        value: Any,
        *,
        step: int | None = None,
        timestamp: int | None = None,
    ) -> None:
        """Queue one metric value; it is sent in the background, batched (see ``flush``).

        Raises:
            InvalidInput: a bad name, value, step or timestamp (nothing is queued).
            NotFound: the run does not exist.
        """
        if type(run_id) is not str or run_id not in self._writable:
            self._metric_experiment(run_id)
        if type(key) is not str or key not in self._keys_ok:
            validate_key(key, "metric")
            self._keys_ok.add(key)
        if type(value) is not float:
            value = metric_value(key, value)
        self._batcher.append(
            (
                run_id,
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
        self._metric_experiment(run_id)
        pairs, ts, st = _checks.metric_batch(values, step, timestamp, self._keys_ok)
        self._batcher.extend([(run_id, key, value, ts, st) for key, value in pairs])

    def flush(self) -> None:
        """Block until every queued metric value is committed on the server.

        Raises:
            BackendUnavailable: the server stayed unreachable for ``metric_flush_timeout``
                seconds; the values stay queued and are retried in the background.
        """
        self._batcher.flush()

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every value of a metric (flushing this process's queue first)."""
        validate_key(key, "metric")
        _run_id(run_id)
        self.flush()
        found = self.transport.request("GET", f"{_runs(run_id)}/metrics/{quote(key, safe='/')}")
        return [record_from_dict(Metric, m) for m in found["items"]]

    def _send(self, rows: list[Row]) -> None:
        """One batch, one POST; the server has written it when this returns."""
        body = {"metrics": [[r, k, _wire(v), t, s] for r, k, v, t, s in rows]}
        answer = self.transport.request("POST", "/metrics", json=body)
        dropped = int((answer or {}).get("dropped", 0))
        if dropped:
            import logging

            logging.getLogger("milepost.tracking").warning(
                "The server dropped %d of %d metric values (unknown runs, or values the "
                "database refused; counted on the runs' milepost.metric_errors tag).",
                dropped,
                len(rows),
            )

    def _heartbeat(self) -> None:
        now = time.monotonic()
        if now - self._last_beat < self.settings.heartbeat_interval:
            return
        live = list(self._owned)
        if live:
            self.transport.request("POST", "/runs/heartbeat", json={"run_ids": live})
        self._last_beat = now

    def _reset_in_child(self) -> None:
        self._owned = {}
        self._last_beat = -math.inf

    # -- artifacts ------------------------------------------------------------------

    def _upload(self, run_id: str, path: Path, rel: str) -> ArtifactInfo:
        try:
            size = path.stat().st_size
            fh = path.open("rb")
        except OSError as exc:
            raise InvalidInput(f"Cannot read {path}: {exc.strerror}.") from exc

        def chunks() -> Iterator[bytes]:
            while chunk := fh.read(_CHUNK):
                yield chunk

        with fh:
            return self._put(run_id, rel, chunks(), size)

    def _put(self, run_id: str, rel: str, content: Any, size: int) -> ArtifactInfo:
        answer = self.transport.request(
            "PUT",
            f"{_runs(run_id)}/artifacts/{quote(rel, safe='/')}",
            content=content,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
        )
        return record_from_dict(ArtifactInfo, answer)

    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> ArtifactInfo:
        """Upload one file as ``artifact_path/<file name>`` (streamed)."""
        _run_id(run_id)
        path, rel = file_target(local_path, artifact_path)
        return self._upload(run_id, path, rel)

    def log_artifacts(
        self, run_id: str, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> list[ArtifactInfo]:
        """Upload a directory tree, one file per request. Links that leave it are refused
        before anything is sent."""
        _run_id(run_id)
        files = artifact_files(local_dir, artifact_path)
        return [self._upload(run_id, full, rel) for full, rel in files]

    def log_bytes(self, run_id: str, data: bytes, artifact_file: str) -> ArtifactInfo:
        """Store bytes as one artifact file (used by log_text, log_dict, log_figure)."""
        _run_id(run_id)
        rel = bytes_target(data, artifact_file)
        return self._put(run_id, rel, data, len(data))

    def list_artifacts(self, run_id: str, path: str = "") -> list[ArtifactInfo]:
        """A run's artifacts under ``path`` (all by default)."""
        _run_id(run_id)
        prefix = list_prefix(path)
        found = self.transport.request("GET", f"{_runs(run_id)}/artifacts", params={"path": prefix})
        return [record_from_dict(ArtifactInfo, a) for a in found["items"]]

    def read_artifact(self, run_id: str, path: str) -> bytes:
        """The bytes of one artifact file. Raises NotFound."""
        _run_id(run_id)
        rel = safe_relpath(path)
        response = self.transport.send("GET", f"{_runs(run_id)}/artifacts/{quote(rel, safe='/')}")
        data = response.content
        digest = response.headers.get("x-milepost-digest")
        if digest and hashlib.sha256(data).hexdigest() != digest:
            raise IntegrityViolation(
                f"Artifact {rel!r} of run {run_id} arrived damaged: its bytes do not match "
                f"sha256 {digest}.",
                hint="Try again; if it persists, the server's artifact store is damaged.",
            )
        return data

    def download_artifacts(
        self, run_id: str, path: str = "", dst: str | os.PathLike[str] = "."
    ) -> Path:
        """Copy artifacts under ``path`` into ``dst`` keeping their relative paths.

        Every destination is checked before anything is written (as embedded); each file
        is streamed to a temporary file beside its destination, checked against its
        digest, then moved into place.
        """
        return download_all(
            run_id,
            path,
            dst,
            listed=lambda: self.list_artifacts(run_id, path),
            fetch=lambda item, target: self._download(run_id, item, target),
        )

    def _download(self, run_id: str, item: ArtifactInfo, target: Path) -> None:
        tmp_name = None
        try:
            with writing_to(target):
                target.parent.mkdir(parents=True, exist_ok=True)
                response = self.transport.send(
                    "GET",
                    f"{_runs(run_id)}/artifacts/{quote(item.path, safe='/')}",
                    stream=True,
                )
                h = hashlib.sha256()
                try:
                    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
                        tmp_name = tmp.name
                        for chunk in self.transport.iter_bytes(response, _CHUNK):
                            h.update(chunk)
                            tmp.write(chunk)
                finally:
                    response.close()
                if h.hexdigest() != item.digest:
                    raise IntegrityViolation(
                        f"Artifact {item.path!r} of run {run_id} arrived damaged: its bytes "
                        f"do not match sha256 {item.digest}; nothing was written.",
                        hint="Try again; if it persists, the server's artifact store is damaged.",
                    )
                os.replace(tmp_name, target)
                tmp_name = None
        finally:
            if tmp_name is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp_name)

    def close(self) -> None:
        """Flush metrics and stop the background sender."""
        self._batcher.close()
