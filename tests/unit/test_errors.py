from __future__ import annotations

from milepost import errors
from milepost.errors import MilepostError, did_you_mean, mask_uri


def test_every_error_has_a_unique_stable_code() -> None:
    classes = [
        obj
        for obj in vars(errors).values()
        if isinstance(obj, type) and issubclass(obj, MilepostError)
    ]
    codes = [c.code for c in classes]
    assert len(codes) == len(set(codes)) == len(classes) >= 10


def test_wire_form_and_str() -> None:
    exc = errors.NotFound("Run x does not exist.", hint="List runs.", details={"id": "x"})
    assert exc.to_dict() == {
        "code": "not_found",
        "message": "Run x does not exist.",
        "hint": "List runs.",
        "details": {"id": "x"},
    }
    assert str(exc) == "Run x does not exist. List runs."


def test_mask_uri_hides_passwords_only() -> None:
    assert (
        mask_uri("postgresql+psycopg://bob:s3cret@db:5432/x")
        == "postgresql+psycopg://bob:***@db:5432/x"
    )
    assert mask_uri("sqlite:////tmp/a.db") == "sqlite:////tmp/a.db"


def test_did_you_mean() -> None:
    assert "accuracy" in did_you_mean("acuracy", ["accuracy", "loss"])
    assert did_you_mean("zzz", ["accuracy"]) == ""
