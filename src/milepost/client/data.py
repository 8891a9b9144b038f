"""Remote proxy of the data service: datasets, versions, diffs, validations, uploads.

:class:`RemoteData` has the methods the CLI (``milepost data ...``) and the tracking
API call on ``rt.data``, answered by ``/api/v1/datasets/...``. ``register`` stages the
data here with the code embedded mode uses (CSV, DataFrames, Arrow tables, directories
become one Parquet file) and streams that file to the server, so the same content is
the same version whichever way it was registered. A version's ``to_pandas()`` and
``to_arrow()`` download its Parquet files from the server.

One difference: a version registered remotely records no ``source_uri`` (the path it
came from is on the caller's machine, not the server's).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from milepost import _validate as check
from milepost._records import record_from_dict
from milepost.data.models import DatasetInput, DatasetRow, DatasetVersion, parse_ref
from milepost.errors import InvalidInput

if TYPE_CHECKING:
    import pyarrow as pa

    from milepost.client._runtime import RemoteRuntime
    from milepost.client._transport import Transport
    from milepost.data._diff import DatasetDiff
    from milepost.data.results import ValidationResult
    from milepost.data.validation import Suite

__all__ = ["RemoteData"]

_PARQUET = "application/vnd.apache.parquet"
_CHUNK = 1 << 20


def _seg(value: object) -> str:
    return quote(str(value), safe="")


def _version_path(ref: str | DatasetVersion) -> str:
    if isinstance(ref, DatasetVersion):
        name, version = ref.name, str(ref.version)
    else:
        name, number = parse_ref(ref)
        version = "latest" if number is None else str(number)
    return f"/datasets/{_seg(name)}/versions/{version}"


class RemoteData:
    """``rt.data`` over HTTP."""

    def __init__(self, runtime: RemoteRuntime) -> None:
        self.runtime = runtime

    @property
    def http(self) -> Transport:
        return self.runtime.transport

    def _loadable(self, answer: Any) -> DatasetVersion:
        version = record_from_dict(DatasetVersion, answer)
        return dataclasses.replace(version, _loader=self.load_arrow)

    # -- versions ---------------------------------------------------------------------

    def register(self, name: str, data: Any, *, description: str | None = None) -> DatasetVersion:
        """Register ``data`` as a version of ``name`` on the server (same content: same
        version). Paths are read here, on the caller's machine."""
        from milepost.data import _ingest
        from milepost.data.service import _check_name

        _check_name(name)
        description = check.optional_text(description, "Dataset description")
        check.unique_columns(data, "The data")
        with _ingest.workdir("milepost-upload-") as tmp:
            staged = _ingest.stage(data, workdir=tmp, storage_options=self._storage_options())
            upload = _one_file(staged.files, staged.schema, tmp / "upload.parquet")
            with upload.open("rb") as body:
                answer = self.http.request(
                    "POST",
                    f"/datasets/{_seg(name)}/versions",
                    params={"description": description},
                    content=_chunks(body),
                    headers={
                        "Content-Type": _PARQUET,
                        "Content-Length": str(upload.stat().st_size),
                    },
                )
        return self._loadable(answer)

    def get(self, ref: str | DatasetVersion) -> DatasetVersion:
        """A version by ``name@N``, ``name@latest`` or ``name``. Raises NotFound."""
        if isinstance(ref, DatasetVersion):
            return ref
        return self._loadable(self.http.request("GET", _version_path(ref)))

    def versions(self, name: str) -> list[DatasetVersion]:
        """Every version of a dataset, oldest first."""
        from milepost.data.service import _check_name

        _check_name(name)
        answer = self.http.request("GET", f"/datasets/{_seg(name)}/versions")
        return [self._loadable(d) for d in answer["items"]]

    def list_datasets(self) -> list[DatasetRow]:
        """Every dataset with its newest version number."""
        answer = self.http.request("GET", "/datasets")
        return [record_from_dict(DatasetRow, d) for d in answer["items"]]

    def load_arrow(self, version: DatasetVersion) -> pa.Table:
        """The snapshot as one Arrow table, downloaded from the server."""
        import tempfile

        import pyarrow as pa
        import pyarrow.parquet as pq

        tables = []
        path = _version_path(version)
        with tempfile.TemporaryDirectory(prefix="milepost-download-") as tmp:
            for index in range(len(version.files)):
                dest = Path(tmp) / f"{index}.parquet"
                response = self.http.send("GET", f"{path}/files/{index}", stream=True)
                try:
                    with dest.open("wb") as out:
                        for chunk in response.iter_bytes(_CHUNK):
                            out.write(chunk)
                finally:
                    response.close()
                tables.append(pq.read_table(dest))
        return tables[0] if len(tables) == 1 else pa.concat_tables(tables)

    def _storage_options(self) -> dict[str, Any]:
        settings = self.runtime.settings
        if settings.s3_endpoint_url:
            return {"client_kwargs": {"endpoint_url": settings.s3_endpoint_url}}
        return {}

    # -- lineage ----------------------------------------------------------------------

    def log_input(
        self, run_id: str, ref: str | DatasetVersion, *, role: str = "train"
    ) -> DatasetInput:
        """Record that a run used a dataset version in ``role``."""
        check.run_id(run_id)
        text = ref.ref if isinstance(ref, DatasetVersion) else ref
        parse_ref(text)
        answer = self.http.request(
            "POST", f"/runs/{_seg(run_id)}/dataset-inputs", json={"ref": text, "role": role}
        )
        return record_from_dict(DatasetInput, answer)

    def inputs_of_run(self, run_id: str) -> list[DatasetInput]:
        """The dataset versions a run used."""
        check.run_id(run_id)
        answer = self.http.request("GET", f"/runs/{_seg(run_id)}/dataset-inputs")
        return [record_from_dict(DatasetInput, d) for d in answer["items"]]

    def runs_using(self, ref: str | DatasetVersion) -> list[DatasetInput]:
        """The runs that used a dataset version."""
        answer = self.http.request("GET", _version_path(ref) + "/runs")
        return [record_from_dict(DatasetInput, d) for d in answer["items"]]

    # -- diff and validation ----------------------------------------------------------

    def diff(self, a: str | DatasetVersion, b: str | DatasetVersion) -> DatasetDiff:
        """Schema, row-count and per-column statistic changes from ``a`` to ``b``."""
        refs = [v.ref if isinstance(v, DatasetVersion) else v for v in (a, b)]
        for r in refs:
            parse_ref(r)
        answer = self.http.request("GET", "/dataset-diffs", params={"a": refs[0], "b": refs[1]})
        return _diff_from_dict(answer)

    def validate(
        self,
        data: Any,
        suite: Suite | str | Path | dict[str, Any],
        *,
        strict: bool = False,
        run_id: str | None = None,
        now: datetime | None = None,
    ) -> ValidationResult:
        """Run a suite over a stored version on the server and store the result.

        ``data`` is a version or its ref (register a DataFrame or file first); a suite
        file is read here.
        """
        from milepost.data.results import ValidationResult

        parsed = _suite(suite)
        check.boolean(strict, "strict")
        if run_id is not None:
            check.run_id(run_id)
        if now is not None and not isinstance(now, datetime):
            raise InvalidInput(f"now must be a datetime, got {type(now).__name__}.")
        if not isinstance(data, (str, DatasetVersion)):
            raise InvalidInput(
                f"Remote validation runs over a registered dataset version, not a "
                f"{type(data).__name__}.",
                hint="Register the data first (rt.data.register(name, data)), then validate "
                "its ref ('name@N').",
            )
        answer = self.http.request(
            "POST",
            _version_path(data) + "/validations",
            json={
                "suite": parsed.to_dict(),
                "run_id": run_id,
                "now": now.isoformat() if now is not None else None,
            },
        )
        result = ValidationResult.from_dict(answer)
        if strict:
            result.raise_for_failure()
        return result

    def validations(self, ref: str | DatasetVersion, *, limit: int = 20) -> list[ValidationResult]:
        """Stored validation results of a version, newest first."""
        from milepost.data.results import ValidationResult

        check.integer(limit, "limit", minimum=1)
        answer = self.http.request(
            "GET", _version_path(ref) + "/validations", params={"limit": min(limit, 1000)}
        )
        return [ValidationResult.from_dict(d) for d in answer["items"]]

    def get_validation(self, result_id: str) -> ValidationResult:
        """One stored validation result."""
        from milepost.data.results import ValidationResult

        check.name(result_id, "Validation result id", max_length=32)
        answer = self.http.request("GET", f"/validations/{_seg(result_id)}")
        return ValidationResult.from_dict(answer)


def _diff_from_dict(d: dict[str, Any]) -> DatasetDiff:
    """Inverse of ``DatasetDiff.to_dict()``."""
    from milepost.data._diff import DatasetDiff
    from milepost.data.models import ColumnSchema

    return DatasetDiff(
        a=d["from"],
        b=d["to"],
        added=[record_from_dict(ColumnSchema, c) for c in d["columns_added"]],
        removed=[record_from_dict(ColumnSchema, c) for c in d["columns_removed"]],
        retyped=[(c["name"], c["from"], c["to"]) for c in d["columns_retyped"]],
        rows=(d["rows"]["from"], d["rows"]["to"]),
        stats={
            col: {k: (v["from"], v["to"]) for k, v in changes.items()}
            for col, changes in d["stats"].items()
        },
        same_content=d["same_content"],
    )


def _suite(suite: Any) -> Suite:
    """A suite from a Suite, a mapping, YAML text or a local YAML file."""
    from milepost.data.service import _suite as parse

    return parse(suite)


def _one_file(files: list[Path], schema: pa.Schema, dest: Path) -> Path:
    """The staged Parquet files as one file (the upload's body)."""
    if len(files) == 1:
        return files[0]
    import pyarrow.parquet as pq

    with pq.ParquetWriter(dest, schema, compression="zstd") as writer:
        for f in files:
            writer.write_table(pq.read_table(f, schema=schema))
    return dest


def _chunks(body: Any) -> Any:
    while chunk := body.read(_CHUNK):
        yield chunk
