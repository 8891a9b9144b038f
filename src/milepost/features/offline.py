"""The offline path: point-in-time-correct training data with DuckDB over Parquet.

For a label at time ``t`` a feature row counts only if its event time is ``<= t`` and
``> t - ttl``; among rows with the same entity and event time, the one with the latest
created time wins, then the one in the later file and later row (so later pushes and
corrections win deterministically). Labels with no such row get nulls: no row is ever
dropped, and the result keeps the entity frame's order.

Timestamps: every time is UTC. Timezone-aware values are converted to UTC; naive values
are taken to be UTC already. This one rule applies to entity frames, sources, pushes
and online reads alike.

DuckDB runs the joins (``ASOF LEFT JOIN`` after de-duplicating ties) with a memory limit,
spilling to disk beyond it, so sources larger than memory work.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from milepost.data._profile import quote
from milepost.errors import InvalidInput, MilepostError
from milepost.features.definitions import (
    DatasetSource,
    FeatureView,
    FileSource,
    OnDemandFeatureView,
    PushSource,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    import duckdb

    from milepost.data.service import DataService

__all__ = ["OfflineStore", "ViewRequest", "normalize_times", "run_on_demand", "run_transform"]

ROW = "__mp_row"
TS = "__mp_ts"
CREATED = "__mp_created"
#: Of stored rows with the same entity and event time: latest created, later file, later row.
NEWEST_FIRST = f"{CREATED} DESC NULLS LAST, __mp_file DESC, __mp_file_row DESC"


def normalize_times(series: pd.Series, what: str) -> pd.Series:
    """UTC as naive datetimes (aware values converted, naive ones taken as UTC)."""
    if not pd.api.types.is_datetime64_any_dtype(series.dtype):
        try:
            # utc=True is the rule itself: aware values converted, naive ones taken as UTC
            # (and a column may mix zones, or aware and naive values).
            series = pd.to_datetime(series, utc=True)
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"{what} must hold timestamps; {exc}.") from exc
    if getattr(series.dt, "tz", None) is not None:
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    return series.astype("datetime64[us]")


def _sql_list(paths: Sequence[str | Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


@dataclass(frozen=True)
class ViewRequest:
    """Features wanted from one view version."""

    view: FeatureView
    version: int
    features: list[str]

    @property
    def key(self) -> str:
        """``view:vN``."""
        return f"{self.view.name}:v{self.version}"


class OfflineStore:
    """Source files, transformed-row caches and push segments, read by DuckDB."""

    def __init__(
        self,
        root: str,
        *,
        data: DataService,
        cache_dir: Path,
        storage_options: dict[str, Any] | None = None,
        memory_limit: str = "1GB",
    ) -> None:
        self.root = root.rstrip("/")
        self.remote = "://" in self.root
        self.data = data
        self.cache_dir = cache_dir
        self.storage_options = storage_options or {}
        self.memory_limit = memory_limit
        self._db: duckdb.DuckDBPyConnection | None = None
        self._db_pid = 0
        self._db_lock = threading.Lock()

    # -- files --------------------------------------------------------------------------

    def _fs(self) -> Any:
        import fsspec

        protocol = self.root.partition("://")[0] if self.remote else "file"
        return fsspec.filesystem(protocol, **(self.storage_options if self.remote else {}))

    def _local_copy(self, uri: str, fs: Any) -> Path:
        info = fs.info(uri)
        tag = hashlib.sha256(
            json.dumps(
                [uri, info.get("size"), str(info.get("ETag") or info.get("mtime"))], default=str
            ).encode()
        ).hexdigest()
        dest = self.cache_dir / "s3" / f"{tag}.parquet"
        if not dest.is_file():
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=dest.parent)
            os.close(fd)
            fs.get_file(uri, tmp)
            os.replace(tmp, dest)
        return dest

    def push_dir(self, source: str) -> str:
        """Where a push source's segments live."""
        return f"{self.root}/push/{source}"

    def source_files(
        self, source: FileSource | DatasetSource | PushSource
    ) -> tuple[list[Path], dict[str, Any]]:
        """Local Parquet files for a source and what lineage records about them."""
        if isinstance(source, DatasetSource):
            version = self.data.get(source.ref)
            return self.data.local_files(version), {
                "dataset": version.ref,
                "content_hash": version.content_hash,
            }
        if isinstance(source, PushSource):
            base = self.push_dir(source.name)
            if self.remote:
                fs = self._fs()
                uris = sorted(fs.glob(base + "/*.parquet")) if fs.exists(base) else []
                files = [self._local_copy(u, fs) for u in uris]
            else:
                files = sorted(Path(base).glob("*.parquet")) if Path(base).is_dir() else []
            return files, {
                "push": source.name,
                "segments": len(files),
                "last": files[-1].name if files else None,
            }
        path = source.path
        if path.startswith("s3://"):
            import fsspec

            fs = fsspec.filesystem("s3", **self.storage_options)
            uris = (
                sorted(fs.glob(path))
                if any(c in path for c in "*?[")
                else (sorted(fs.find(path)) if fs.isdir(path) else [path])
            )
            files = [
                self._local_copy(u if u.startswith("s3://") else f"s3://{u}", fs)
                for u in uris
                if str(u).endswith(".parquet")
            ]
        else:
            p = Path(path)
            files = (
                sorted(p.rglob("*.parquet"))
                if p.is_dir()
                else sorted(Path().glob(path))
                if any(c in path for c in "*?[")
                else [p]
            )
            missing = [f for f in files if not f.is_file()]
            if missing:
                raise InvalidInput(f"Feature source file {missing[0]} does not exist.")
        if not files:
            raise InvalidInput(f"Feature source {path!r} matches no Parquet files.")
        stats = [(str(f), f.stat().st_size, int(f.stat().st_mtime)) for f in files]
        return files, {"files": stats}

    def _transformed(self, view: FeatureView, fingerprint: str, lineage: dict[str, Any]) -> Path:
        ident = hashlib.sha256(json.dumps([fingerprint, lineage], default=str).encode()).hexdigest()
        return self.cache_dir / "transformed" / view.name / f"{ident}.parquet"

    def computed(self, view: FeatureView, fingerprint: str) -> bool:
        """Whether reading the version's rows runs no transform: the rows its transform
        computed over the current source data are stored, or the source has no rows."""
        files, lineage = self.source_files(view.source)
        return not files or self._transformed(view, fingerprint, lineage).is_file()

    def view_files(self, view: FeatureView, fingerprint: str) -> tuple[list[Path], dict[str, Any]]:
        """The view's rows after its transform, cached by definition and source identity."""
        files, lineage = self.source_files(view.source)
        if view.transform is None and not isinstance(view.source, PushSource):
            _check_columns(view, files)
        if view.transform is None or not files:
            return files, lineage
        dest = self._transformed(view, fingerprint, lineage)
        if not dest.is_file():
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=dest.parent, suffix=".parquet")
            os.close(fd)
            writer = None
            try:
                for frame in _frames(files):
                    out = run_transform(view, frame)
                    table = pa.Table.from_pandas(out, preserve_index=False)
                    if writer is None:
                        writer = pq.ParquetWriter(tmp, table.schema)
                    writer.write_table(table.cast(writer.schema))
            finally:
                if writer is not None:
                    writer.close()
            os.replace(tmp, dest)
        return [dest], lineage

    # -- SQL ----------------------------------------------------------------------------

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A new DuckDB connection (in UTC) to this process's in-memory database.

        The database, with the memory limit and the spill directory, is created once per
        process: creating one costs DuckDB ~30 ms, a connection to it (``cursor``) next to
        nothing. Connections keep their registered frames and temporary tables to
        themselves; close each when done.
        """
        import duckdb

        with self._db_lock:
            if self._db is None or self._db_pid != os.getpid():  # never share across fork
                db = duckdb.connect(":memory:")
                db.execute(f"SET memory_limit = '{self.memory_limit}'")
                spill = self.cache_dir / "duckdb-spill"
                spill.mkdir(parents=True, exist_ok=True)
                db.execute(f"SET temp_directory = '{spill}'")
                self._db, self._db_pid = db, os.getpid()
            con = self._db.cursor()
        con.execute("SET TimeZone = 'UTC'")
        return con

    def raw_rows(self, view: FeatureView, files: Sequence[Path], columns: Sequence[str]) -> str:
        """SQL for every stored row: keys, event time, created time, ``columns``, and the
        file and row number that break ties (see :meth:`pick_rows`)."""
        keys = ", ".join(quote(k) for k in view.entity.join_keys)
        created = (
            f"CAST({quote(view.created_timestamp_field)} AS TIMESTAMP)"
            if view.created_timestamp_field
            else "NULL::TIMESTAMP"
        )
        union = ", union_by_name = true" if isinstance(view.source, PushSource) else ""
        cols = "".join(f", {quote(c)}" for c in columns)
        return (
            f"SELECT {keys}, CAST({quote(view.timestamp_field)} AS TIMESTAMP) AS {TS}, "
            f"{created} AS {CREATED}{cols}, filename AS __mp_file, "
            f"file_row_number AS __mp_file_row "
            f"FROM read_parquet({_sql_list(files)}, filename = true, "
            f"file_row_number = true{union})"
        )

    def pick_rows(
        self,
        view: FeatureView,
        files: Sequence[Path],
        columns: Sequence[str],
        matches: str,
        *,
        carry: Sequence[str],
        unique: Sequence[str],
    ) -> str:
        """For each row of ``matches`` (join keys and ``__mp_match``, an event time), the
        stored row at exactly that entity and time; of several, the latest created wins,
        then the later file, then the later row in it.

        Point-in-time lookups first find the matching event time from the keys and
        times alone (an ASOF join or a max that reads two columns), then fetch only the
        rows at those times. Reducing ties over the whole source first would hash or
        sort every stored row with all its columns: at 10M rows, three times slower and
        over 1 GiB. A ``matches`` row without a match gets nulls. ``carry`` names more
        columns of ``matches`` to keep; ``unique`` the columns that tell its rows apart.

        The window runs above the ASOF join, never under it: DuckDB 2.0.1 returns no ASOF
        match over a subquery whose window orders by ``file_row_number`` (the property
        test in tests/unit/features found it).
        """
        on = " AND ".join(f"m.{quote(k)} = r.{quote(k)}" for k in view.entity.join_keys)
        kept = [*(quote(k) for k in view.entity.join_keys), "__mp_match"]
        kept += [quote(c) for c in carry]
        unique = [quote(c) for c in unique]
        picked = ", ".join(
            [*(f"m.{c}" for c in kept), f"r.{CREATED}", *(f"r.{quote(c)}" for c in columns)]
        )
        return (
            f"SELECT {picked} FROM ({matches}) m "
            f"LEFT JOIN ({self.raw_rows(view, files, columns)}) r "
            f"ON {on} AND m.__mp_match = r.{TS} "
            f"QUALIFY row_number() OVER (PARTITION BY {', '.join(f'm.{c}' for c in unique)} "
            f"ORDER BY {NEWEST_FIRST}) = 1"
        )

    def historical(
        self,
        entity_df: pd.DataFrame,
        requests: Sequence[ViewRequest],
        *,
        timestamp_column: str,
        names: dict[tuple[str, str], str],
        fingerprints: dict[str, str],
    ) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
        """Point-in-time join of every requested view onto the entity frame."""
        # DuckDB sees only the join keys, the time and the row number, not the whole frame.
        keys_needed = list(dict.fromkeys(k for r in requests for k in r.view.entity.join_keys))
        frame = entity_df[keys_needed].reset_index(drop=True)
        frame[TS] = normalize_times(
            entity_df[timestamp_column].reset_index(drop=True),
            f"entity_df column {timestamp_column!r}",
        )
        frame[ROW] = np.arange(len(frame), dtype=np.int64)
        con = self.connect()
        try:
            con.register("__mp_entities", frame)
            ctes, selects, joins, lineage = [], [], [], []
            for i, req in enumerate(requests):
                view = req.view
                files, info = self.view_files(view, fingerprints[req.key])
                lineage.append({"view": req.key, **info})
                alias = f"v{i}"
                keys = view.entity.join_keys
                cols = req.features
                ttl = int(view.ttl.total_seconds() * 1_000_000)
                on = " AND ".join(f"e.{quote(k)} = s.{quote(k)}" for k in keys)
                key_cols = ", ".join(f"e.{quote(k)}" for k in keys)
                if files:
                    times = (  # DuckDB reads only these two columns of raw_rows
                        f"SELECT {', '.join(quote(k) for k in keys)}, {TS} "
                        f"FROM ({self.raw_rows(view, files, [])})"
                    )
                    matches = (
                        f"SELECT e.{ROW}, e.{TS} AS __mp_at, {key_cols}, s.{TS} AS __mp_match "
                        f"FROM __mp_entities e ASOF LEFT JOIN ({times}) s "
                        f"ON {on} AND e.{TS} >= s.{TS}"
                    )
                    src = self.pick_rows(
                        view, files, cols, matches, carry=[ROW, "__mp_at"], unique=[ROW]
                    )
                else:  # a push source with nothing pushed yet
                    src = (
                        f"SELECT e.{ROW}, e.{TS} AS __mp_at, NULL::TIMESTAMP AS __mp_match, "
                        + ", ".join(f"NULL AS {quote(c)}" for c in cols)
                        + " FROM __mp_entities e"
                    )
                picked = ", ".join(
                    f"CASE WHEN s.__mp_match > s.__mp_at - to_microseconds({ttl}) "
                    f"THEN s.{quote(c)} END AS {quote(names[(req.key, c)])}"
                    for c in cols
                )
                ctes.append(f"{alias} AS (SELECT s.{ROW}, {picked} FROM ({src}) s)")
                selects.append(", ".join(f"{alias}.{quote(names[(req.key, c)])}" for c in cols))
                joins.append(f"LEFT JOIN {alias} USING ({ROW})")
            sql = (
                f"WITH {', '.join(ctes)} SELECT {', '.join(selects)} FROM __mp_entities "
                f"{' '.join(joins)} ORDER BY {ROW}"
            )
            features = con.sql(sql).to_arrow_table().to_pandas()
        finally:
            con.close()
        out = entity_df.reset_index(drop=True)
        if any(c in out.columns for c in features.columns):  # a feature replaces a column
            out = out.copy()
            for column in features.columns:
                out[column] = features[column].to_numpy()
        else:
            out = pd.concat([out, features.set_axis(out.index)], axis=1)
        return out, lineage

    def latest_rows(
        self,
        view: FeatureView,
        fingerprint: str,
        *,
        start: pd.Timestamp | None,
        end: pd.Timestamp,
        batch_rows: int = 50_000,
    ) -> Iterator[pa.RecordBatch]:
        """The newest row per entity with event time in ``[start, end)``, in batches.

        Memory does not grow with the range: the newest time per entity comes from the
        keys and times alone (a GROUP BY into a temporary table), then the rows at those
        times are collected from a few files at a time (about ``CHUNK_BYTES`` of Parquet
        per query; DuckDB's scan over many files at once holds more buffers), and ties
        are broken as in :meth:`pick_rows`.
        """
        files, _ = self.view_files(view, fingerprint)
        if not files:
            return
        con = self.connect()
        try:
            key_names = [quote(k) for k in view.entity.join_keys]
            keys = ", ".join(key_names)
            where = f"{TS} < '{end.isoformat()}'::TIMESTAMP"
            if start is not None:
                where += f" AND {TS} >= '{start.isoformat()}'::TIMESTAMP"
            con.execute(
                f"CREATE TEMP TABLE __mp_newest AS SELECT {keys}, max({TS}) AS __mp_match "
                f"FROM ({self.raw_rows(view, files, [])}) WHERE {where} GROUP BY {keys}"
            )
            on = " AND ".join(f"m.{k} = r.{k}" for k in key_names)
            feats = "".join(f", r.{quote(c)}" for c in view.features)
            # Push segments may differ in columns (a newer view version adds one): one
            # query over all of them lets union_by_name fill the gaps with nulls.
            chunks = [files] if isinstance(view.source, PushSource) else _chunks(files)
            for i, chunk in enumerate(chunks):
                found = (
                    f"SELECT {', '.join(f'm.{k}' for k in key_names)}, m.__mp_match, "
                    f"r.{CREATED}{feats}, r.__mp_file, r.__mp_file_row FROM __mp_newest m "
                    f"JOIN ({self.raw_rows(view, chunk, view.features)}) r "
                    f"ON {on} AND m.__mp_match = r.{TS}"
                )
                con.execute(
                    f"CREATE TEMP TABLE __mp_found AS {found}"
                    if i == 0
                    else f"INSERT INTO __mp_found {found}"
                )
            sql = (
                f"SELECT {keys}, __mp_match AS {TS}, {CREATED}"
                + "".join(f", {quote(c)}" for c in view.features)
                + f" FROM __mp_found QUALIFY row_number() OVER (PARTITION BY {keys} "
                f"ORDER BY {NEWEST_FIRST}) = 1"
            )
            yield from con.sql(sql).to_arrow_reader(batch_rows)
        finally:
            con.close()


#: Parquet bytes per query when materializing (see ``OfflineStore.latest_rows``).
CHUNK_BYTES = 128 << 20


def _chunks(files: Sequence[Path], chunk_bytes: int | None = None) -> list[list[Path]]:
    """Consecutive groups of files of about ``chunk_bytes`` each (at least one file)."""
    chunk_bytes = CHUNK_BYTES if chunk_bytes is None else chunk_bytes
    chunks: list[list[Path]] = [[]]
    size = 0
    for path in files:
        n = path.stat().st_size if path.exists() else 0
        if chunks[-1] and size + n > chunk_bytes:
            chunks.append([])
            size = 0
        chunks[-1].append(path)
        size += n
    return chunks


def _check_columns(view: FeatureView, files: Sequence[Path]) -> None:
    """Refuse a source file that lacks a column the view reads (schema drift), naming both."""
    wanted = [*view.entity.join_keys, view.timestamp_field, *view.features]
    if view.created_timestamp_field:
        wanted.append(view.created_timestamp_field)
    for path in files:
        try:
            names = set(pq.read_schema(path).names)
        except (pa.ArrowInvalid, OSError) as exc:
            raise InvalidInput(
                f"Feature source file {path} is not readable Parquet: {exc}."
            ) from exc
        missing = [c for c in wanted if c not in names]
        if missing:
            raise InvalidInput(
                f"Feature view {view.name!r}: source file {path} has no column {missing[0]!r} "
                "(did the source's schema drift?).",
                hint="Fix the source, or change the view's schema and apply it as a new version.",
            )


def _frames(files: Sequence[Path], batch_rows: int = 65_536) -> Iterator[pd.DataFrame]:
    for path in files:
        reader = pq.ParquetFile(path, buffer_size=1 << 20, pre_buffer=False)
        for batch in reader.iter_batches(batch_size=batch_rows):
            yield batch.to_pandas()


def run_transform(view: FeatureView, frame: pd.DataFrame) -> pd.DataFrame:
    """Apply a view's transform and keep its keys, timestamps and features.

    Raises:
        InvalidInput: the transform failed, changed the row count or lacks a feature.
    """
    keep = [*view.entity.join_keys, view.timestamp_field]
    if view.created_timestamp_field:
        keep.append(view.created_timestamp_field)
    if view.transform is None:
        out = frame
    else:
        try:
            out = view.transform(frame.copy())
        except MilepostError:
            raise  # e.g. an older version's code is not loaded: that message says which
        except Exception as exc:
            raise InvalidInput(
                f"The transform of feature view {view.name!r} failed: {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(out, pd.DataFrame) or len(out) != len(frame):
            raise InvalidInput(
                f"The transform of {view.name!r} must return a DataFrame with one row per input "
                "row (transforms are row-wise)."
            )
    missing = [c for c in [*keep, *view.features] if c not in out.columns]
    if missing:
        raise InvalidInput(
            f"Feature view {view.name!r}: column {missing[0]!r} is missing from "
            "its rows" + (" after the transform" if view.transform else "") + ".",
            hint="Check the source columns and the schema.",
        )
    return out[list(dict.fromkeys([*keep, *view.features]))].reset_index(drop=True)


def run_on_demand(view: OnDemandFeatureView, frame: pd.DataFrame) -> pd.DataFrame:
    """Run an on-demand view's transform on a frame of its inputs (offline and online).

    Raises:
        InvalidInput: the transform failed, or did not return one row per input with
            the view's features.
    """
    try:
        out = view.transform(frame.copy())
    except Exception as exc:
        raise InvalidInput(
            f"On-demand view {view.name!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
    if (
        not isinstance(out, pd.DataFrame)
        or len(out) != len(frame)
        or any(f not in out.columns for f in view.features)
    ):
        raise InvalidInput(
            f"On-demand view {view.name!r} must return one row per input with "
            f"its features ({', '.join(view.features)})."
        )
    return out
