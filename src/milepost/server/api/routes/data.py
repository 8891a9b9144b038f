"""``/api/v1`` routes: datasets, their versions (schema, profile), the runs that used
them, validation results, diffs, and registering a version by upload.

A version is registered by streaming one Parquet file as the request body (the client
stages CSV, DataFrames and directories into one Parquet file first, with the same code
embedded mode uses, so the same content gives the same version either way). The body is
spooled to disk chunk by chunk and refused with 413 past the ``server_max_upload_mb``
setting; nothing is stored then. A version's snapshot files are downloaded the same way.

The server never reads a path a caller names: validation runs over a stored version
(``name@N``), never over a file on the server.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from milepost.errors import InvalidInput, NotFound
from milepost.server.api.routes._upload import spooled_body
from milepost.server.api.routes.tracking import scope_run

if TYPE_CHECKING:
    from milepost.data.service import DataService

__all__ = ["PARQUET_MEDIA_TYPE", "router"]

router = APIRouter(tags=["data"])

#: The media type of a version's upload and its downloaded files.
PARQUET_MEDIA_TYPE = "application/vnd.apache.parquet"


def _data(request: Request) -> DataService:
    return request.app.state.rt.data  # type: ignore[no-any-return]


def _ref(name: str, version: str) -> str:
    return f"{name}@{version}"


def _items(records: Any) -> dict[str, Any]:
    return {"items": [r.to_dict() for r in records]}


# -- reading ------------------------------------------------------------------------


@router.get("/datasets")
def list_datasets(request: Request) -> dict[str, Any]:
    """Every dataset with its newest version number."""
    return _items(_data(request).list_datasets())


@router.get("/datasets/{name}/versions")
def list_versions(request: Request, name: str) -> dict[str, Any]:
    """Every version of a dataset, oldest first."""
    return _items(_data(request).versions(name))


@router.get("/datasets/{name}/versions/{version}")
def get_version(request: Request, name: str, version: str) -> dict[str, Any]:
    """One version (a number or ``latest``): schema, profile, size, files."""
    result: dict[str, Any] = _data(request).get(_ref(name, version)).to_dict()
    return result


@router.get("/datasets/{name}/versions/{version}/runs")
def runs_using(request: Request, name: str, version: str) -> dict[str, Any]:
    """The runs that used a version."""
    return _items(_data(request).runs_using(_ref(name, version)))


@router.get("/runs/{run_id}/dataset-inputs")
def inputs_of_run(request: Request, run_id: str) -> dict[str, Any]:
    """The dataset versions a run used."""
    scope_run(request, run_id)
    return _items(_data(request).inputs_of_run(run_id))


class InputBody(BaseModel):
    """Record that a run used a dataset version in a role."""

    model_config = ConfigDict(extra="forbid")
    ref: str
    role: str = "train"


@router.post("/runs/{run_id}/dataset-inputs", status_code=201)
def log_input(request: Request, run_id: str, body: InputBody) -> dict[str, Any]:
    """Link a dataset version to a run (``role``: train, eval, test, ...)."""
    scope_run(request, run_id)
    result: dict[str, Any] = _data(request).log_input(run_id, body.ref, role=body.role).to_dict()
    return result


@router.get("/dataset-diffs")
def diff(request: Request, a: str, b: str) -> dict[str, Any]:
    """Schema, row-count and per-column statistic changes from ``a`` to ``b`` (refs)."""
    result: dict[str, Any] = _data(request).diff(a, b).to_dict()
    return result


@router.get(
    "/datasets/{name}/versions/{version}/files/{index}",
    response_class=FileResponse,
    responses={200: {"content": {PARQUET_MEDIA_TYPE: {}}}},
)
def download_file(request: Request, name: str, version: str, index: int) -> FileResponse:
    """One of a version's Parquet files (0-based), verified against its digest, streamed."""
    data = _data(request)
    v = data.get(_ref(name, version))
    if not 0 <= index < len(v.files):
        raise NotFound(
            f"Dataset version {v.ref} has {len(v.files)} file(s); there is no file {index}.",
            hint=f"Files are numbered 0 to {len(v.files) - 1}.",
        )
    path = data.local_files(v)[index]
    return FileResponse(
        path,
        media_type=PARQUET_MEDIA_TYPE,
        headers={"X-Milepost-Digest": v.files[index]},
    )


# -- validation ---------------------------------------------------------------------


@router.get("/datasets/{name}/versions/{version}/validations")
def validations(
    request: Request,
    name: str,
    version: str,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> dict[str, Any]:
    """Stored validation results of a version, newest first."""
    return _items(_data(request).validations(_ref(name, version), limit=limit))


class ValidateBody(BaseModel):
    """Run an expectation suite (its mapping form) over a stored version."""

    model_config = ConfigDict(extra="forbid")
    suite: dict[str, Any]
    run_id: str | None = None
    now: datetime | None = None


@router.post("/datasets/{name}/versions/{version}/validations", status_code=201)
def validate(request: Request, name: str, version: str, body: ValidateBody) -> dict[str, Any]:
    """Validate a stored version and store the result (a failed check is a result, not
    an error: the client raises ValidationFailed when it asked for strict)."""
    if body.now is not None and body.now.tzinfo is None:
        raise InvalidInput("now needs a time zone.", hint="Send ISO 8601 with an offset.")
    if body.run_id is not None:
        scope_run(request, body.run_id)
    data = _data(request)
    v = data.get(_ref(name, version))
    result: dict[str, Any] = data.validate(
        v, body.suite, run_id=body.run_id, now=body.now
    ).to_dict()
    return result


@router.get("/validations/{result_id}")
def get_validation(request: Request, result_id: str) -> dict[str, Any]:
    """One stored validation result."""
    result: dict[str, Any] = _data(request).get_validation(result_id).to_dict()
    return result


# -- registering by upload ----------------------------------------------------------


#: What to do instead of an upload past the server's limit.
TOO_LARGE = "register the data where the stores are reachable (without MILEPOST_URL)."


def _register_file(data: DataService, name: str, path: Path, description: str | None) -> Any:
    """Register the uploaded Parquet file's table (read here: the spool path is not the
    data's source, so it is not recorded as one)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise InvalidInput(
            f"The upload is not a readable Parquet file: {exc}.",
            hint="Send one Parquet file as the body (the milepost client stages CSV and "
            "DataFrames into one).",
        ) from exc
    return data.register(name, table, description=description)


@router.post(
    "/datasets/{name}/versions",
    status_code=201,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {PARQUET_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def register(request: Request, name: str, description: str | None = None) -> dict[str, Any]:
    """Register the Parquet file in the body as a version of ``name`` (the same content:
    the same version, nothing stored twice)."""
    from milepost.data.service import _check_name

    _check_name(name)  # before reading a large body
    upload = spooled_body(request, TOO_LARGE, prefix="dataset-", suffix=".parquet")
    async with upload as (spooled, size):
        if size == 0:
            raise InvalidInput("The upload is empty.", hint="Send one Parquet file as the body.")
        version = await run_in_threadpool(
            _register_file, _data(request), name, spooled, description
        )
    result: dict[str, Any] = version.to_dict()
    return result
