"""Turning user input into a staged snapshot: local Parquet files plus a content hash.

Input: a pandas or Polars DataFrame, an Arrow table, or paths (files, directories,
globs; local or ``s3://``) of Parquet or CSV files. Everything ends up as local Parquet
files in a work directory (Parquet inputs are used in place, CSV is converted in a
streaming way, S3 objects are downloaded), read back batch by batch so memory stays
bounded whatever the size.

What is data: a DataFrame's columns and its *named* index levels (``set_index("ts")``);
an unnamed index (the row labels pandas leaves after filtering or sorting) is not, so
``df[mask]`` registers like ``df[mask].reset_index(drop=True)`` and like its CSV. In a CSV
an empty field (``,,`` or ``,"",``) is missing in every column, text included, as pandas
reads it; so an empty string cannot be told from a missing one there. In a one-column
CSV an empty line is a row with a missing value.

The content hash of the staged files is in :mod:`milepost.data._hash`.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from milepost.data._hash import content_hash, iter_batches
from milepost.errors import InvalidInput

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

__all__ = [
    "StagedData",
    "canonical_type",
    "content_hash",
    "iter_batches",
    "stage",
    "sweep_workdirs",
    "workdir",
]

_PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".tsv")


# Work directories: <temp dir>/milepost-ingest-*, each with a lock file its owner holds.
WORKDIR_PREFIXES = ("milepost-ingest-", "milepost-validate-")
_OWNER_LOCK = ".owner.lock"
# Without file locks (or a lock file), only directories this old are taken for dead.
_UNLOCKED_STALE_SECONDS = 24 * 3600

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: fall back to age alone
    fcntl = None  # type: ignore[assignment]


def _abandoned(path: Path) -> bool:
    """Whether no live process owns a work directory (its owner's lock is free)."""
    lock = path / _OWNER_LOCK
    try:
        fd = os.open(lock, os.O_RDWR)
    except FileNotFoundError:  # being created right now, or left by an old version
        try:
            return time.time() - path.stat().st_mtime > _UNLOCKED_STALE_SECONDS
        except OSError:
            return False
    except OSError:  # another user's directory
        return False
    try:
        if fcntl is None:  # pragma: no cover
            return time.time() - os.fstat(fd).st_mtime > _UNLOCKED_STALE_SECONDS
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held: its owner is alive
            return False
        return True
    finally:
        os.close(fd)


def sweep_workdirs(base: Path | None = None) -> list[Path]:
    """Remove the work directories of ingests and validations that were interrupted.

    A run holds an exclusive lock on its directory's lock file until it has removed the
    directory; the lock dies with the process, so a directory whose lock is free belongs
    to a run that was killed. Returns what was removed.
    """
    base = Path(base or tempfile.gettempdir())
    removed = []
    with contextlib.suppress(OSError):
        for entry in base.iterdir():
            if entry.name.startswith(WORKDIR_PREFIXES) and entry.is_dir() and _abandoned(entry):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
    return removed


@contextlib.contextmanager
def workdir(prefix: str = "milepost-ingest-", base: Path | None = None) -> Iterator[Path]:
    """A private work directory under the temp dir, removed on exit.

    What interrupted runs left behind (a killed process never reaches its cleanup) is
    removed first, so such directories live only until the next run.
    """
    sweep_workdirs(base)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    fd = os.open(path / _OWNER_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)  # still locked: no sweeper takes it meanwhile
        os.close(fd)


@dataclass
class StagedData:
    """Local Parquet files holding the data, and where it came from."""

    files: list[Path]
    sources: list[str]
    schema: pa.Schema
    source_uri: str | None
    temporary: list[Path] = field(default_factory=list)


def canonical_type(t: pa.DataType) -> str:
    """The type files of one version must share: dictionaries count as their value type."""
    if pa.types.is_dictionary(t):
        return canonical_type(t.value_type)
    return str(t)


def _check_supported(schema: pa.Schema, where: str) -> None:
    if len(schema) == 0:
        raise InvalidInput(f"{where} has no columns.")
    seen: set[str] = set()
    for f in schema:
        t = f.type.value_type if pa.types.is_dictionary(f.type) else f.type
        if pa.types.is_nested(t) or pa.types.is_union(t) or isinstance(t, pa.ExtensionType):
            raise InvalidInput(
                f"{where}: column {f.name!r} has type {t}, which dataset versions do not "
                "support yet.",
                hint="Flatten it into separate columns or store it as JSON text.",
            )
        if f.name in seen:
            raise InvalidInput(f"{where}: column {f.name!r} appears twice.", hint="Rename one.")
        seen.add(f.name)


def _table_from(data: Any, *, legacy: bool = False) -> pa.Table | None:
    """An Arrow table for in-memory input, or None for paths.

    ``legacy``: keep an unnamed pandas index as a column, as hash version 1 did.
    """
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    module = type(data).__module__.split(".")[0]
    if module == "pandas":
        import pandas as pd

        if isinstance(data, pd.DataFrame):
            named_index = any(n is not None for n in data.index.names)
            try:
                return pa.Table.from_pandas(data, preserve_index=None if legacy else named_index)
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, ValueError) as exc:
                raise InvalidInput(
                    f"Cannot convert the DataFrame to Arrow: {exc}.",
                    hint="Give each column one type (mixed objects cannot be stored).",
                ) from exc
    if module == "polars" and hasattr(data, "to_arrow"):
        table = data.to_arrow()
        assert isinstance(table, pa.Table)
        return table
    return None


def _expand(paths: Sequence[str], storage_options: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for raw in paths:
        if raw.startswith("s3://"):
            import fsspec

            fs = fsspec.filesystem("s3", **storage_options)
            matches = sorted(fs.glob(raw)) if any(c in raw for c in "*?[") else [raw]
            expanded = []
            for match in matches:
                m = match.removeprefix("s3://")
                if fs.isdir(m):
                    expanded += sorted(
                        p for p in fs.find(m) if p.endswith(_PARQUET_SUFFIXES + _CSV_SUFFIXES)
                    )
                elif fs.exists(m):
                    expanded.append(m)
            if not expanded:
                raise InvalidInput(f"No Parquet or CSV files at {raw}.")
            out += [f"s3://{m}" for m in expanded]
            continue
        matches = sorted(glob.glob(raw)) if any(c in raw for c in "*?[") else [raw]
        if not matches:
            raise InvalidInput(f"No files match {raw!r}.")
        for m in matches:
            p = Path(m)
            if p.is_dir():
                found = sorted(
                    str(f)
                    for f in p.rglob("*")
                    if f.is_file() and f.name.endswith(_PARQUET_SUFFIXES + _CSV_SUFFIXES)
                )
                if not found:
                    raise InvalidInput(f"Directory {m} holds no .parquet or .csv files.")
                out += found
            elif p.is_file():
                out.append(str(p))
            else:
                raise InvalidInput(f"{m} does not exist.", hint="Check the path.")
    return out


def _csv_to_parquet(src: Path, dest: Path, label: str, *, legacy: bool = False) -> None:
    import pyarrow.csv as pacsv

    delimiter = "\t" if src.name.endswith(".tsv") else ","
    # An empty field, quoted or not, is missing in every column, text included (as pandas
    # reads it: CSV writers give missing values and empty strings the same form).
    convert = None if legacy else pacsv.ConvertOptions(strings_can_be_null=True)
    try:
        reader = pacsv.open_csv(
            src, parse_options=pacsv.ParseOptions(delimiter=delimiter), convert_options=convert
        )
        if not legacy and len(reader.schema) == 1:
            # One column: an empty line is a row whose value is missing (Arrow's writer
            # leaves it so), not a line to skip.
            reader = pacsv.open_csv(
                src,
                parse_options=pacsv.ParseOptions(delimiter=delimiter, ignore_empty_lines=False),
                convert_options=convert,
            )
        with pq.ParquetWriter(dest, reader.schema, compression="zstd") as writer:
            for batch in reader:
                writer.write_batch(batch)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
        raise InvalidInput(
            f"Cannot read CSV {label}: {exc}.",
            hint="Check the file's delimiter, header and that each column holds one type.",
        ) from exc


def stage(
    data: Any,
    *,
    workdir: Path,
    storage_options: dict[str, Any] | None = None,
    legacy: bool = False,
) -> StagedData:
    """Stage any supported input as local Parquet files with one schema.

    ``legacy``: stage as Milepost did with hash version 1 (an unnamed pandas index kept,
    empty CSV text fields as empty strings), to recognise data registered back then.

    Raises:
        InvalidInput: unreadable or empty input, unsupported types, or files whose schemas
            differ (naming the file and the column).
    """
    storage_options = storage_options or {}
    workdir.mkdir(parents=True, exist_ok=True)
    table = _table_from(data, legacy=legacy)
    if table is not None:
        _check_supported(table.schema, "The data")
        dest = workdir / "data-0.parquet"
        pq.write_table(table, dest, compression="zstd", row_group_size=1_000_000)
        # the schema as files give it back, so in-memory and file input hash alike
        return StagedData([dest], ["<in memory>"], pq.read_schema(dest), None, [dest])

    if isinstance(data, (str, os.PathLike)):
        raw_paths = [os.fspath(data)]
    elif (
        isinstance(data, (list, tuple))
        and data
        and all(isinstance(p, (str, os.PathLike)) for p in data)
    ):
        raw_paths = [os.fspath(p) for p in data]
    else:
        raise InvalidInput(
            f"Cannot register a {type(data).__name__} as a dataset.",
            hint="Pass a pandas or Polars DataFrame, a pyarrow Table, or paths to "
            "Parquet/CSV files (local or s3://).",
        )
    sources = _expand(raw_paths, storage_options)
    files: list[Path] = []
    temporary: list[Path] = []
    for i, src in enumerate(sources):
        lower = src.lower()
        if not lower.endswith(_PARQUET_SUFFIXES + _CSV_SUFFIXES):
            raise InvalidInput(
                f"{src}: unsupported file type.",
                hint="Use Parquet (.parquet) or CSV (.csv, .csv.gz, .tsv) files.",
            )
        local = Path(src)
        if src.startswith("s3://"):
            import fsspec

            local = workdir / f"download-{i}-{Path(src).name}"
            try:
                with fsspec.open(src, "rb", **storage_options) as fin, local.open("wb") as fout:
                    shutil.copyfileobj(fin, fout, 1 << 20)
            except (OSError, ValueError) as exc:
                raise InvalidInput(f"Cannot download {src}: {exc}.") from exc
            temporary.append(local)
        if lower.endswith(_CSV_SUFFIXES):
            converted = workdir / f"csv-{i}.parquet"
            _csv_to_parquet(local, converted, src, legacy=legacy)
            temporary.append(converted)
            local = converted
        files.append(local)

    schema: pa.Schema | None = None
    for path, src in zip(files, sources, strict=True):
        try:
            this = pq.read_schema(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise InvalidInput(
                f"Cannot read {src} as Parquet: {exc}.", hint="Is the file complete and valid?"
            ) from exc
        _check_supported(this, src)
        if schema is None:
            schema = this
            continue
        _check_same_schema(schema, this, sources[0], src)
    assert schema is not None
    source_uri = raw_paths[0] if len(raw_paths) == 1 else json.dumps(raw_paths)
    return StagedData(files, sources, schema, source_uri, temporary)


def _check_same_schema(first: pa.Schema, other: pa.Schema, first_src: str, src: str) -> None:
    names_a, names_b = first.names, other.names
    for name in names_a:
        if name not in names_b:
            raise InvalidInput(
                f"{src} lacks column {name!r}, which {first_src} has.",
                hint="All files of one dataset version need the same columns.",
            )
    for name in names_b:
        if name not in names_a:
            raise InvalidInput(
                f"{src} has column {name!r}, which {first_src} lacks.",
                hint="All files of one dataset version need the same columns.",
            )
    if names_a != names_b:
        raise InvalidInput(f"{src} has the columns in another order than {first_src}.")
    for fa, fb in zip(first, other, strict=True):
        if canonical_type(fa.type) != canonical_type(fb.type):
            raise InvalidInput(
                f"{src}: column {fa.name!r} is {fb.type} but {fa.type} in {first_src}.",
                hint="Cast the column to one type in every file.",
            )
