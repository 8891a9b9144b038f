from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from milepost.errors import InvalidInput
from milepost.stores.paths import safe_join, safe_relpath


@pytest.mark.parametrize(
    ("raw", "normal"),
    [("a.txt", "a.txt"), ("plots/roc.png", "plots/roc.png"), ("./a//b/./c", "a/b/c")],
)
def test_normalises_relative_paths(raw: str, normal: str) -> None:
    assert safe_relpath(raw) == normal


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("../etc/passwd", r"'\.\.'"),
        ("a/../../b", r"'\.\.'"),
        ("/etc/passwd", "absolute"),
        ("C:/Windows", "absolute"),
        ("a\\..\\b", "backslash"),
        ("", "empty"),
        (".", "names no file"),
        ("a\x00b", "NUL"),
        ("a\nb.txt", "control character"),
        ("plots/\x1b[31mred.png", "control character"),
        ("a\u202etxt.exe", "control character"),
        ("bad\ud800.txt", "lone surrogate"),
        ("a" * 256, "256 bytes long; file systems take at most 255"),
        ("d/" + "é" * 128, "256 bytes long"),
        ("d/" * 600 + "f", "longer than 1024 characters"),
    ],
)
def test_refuses_escapes(raw: str, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason):
        safe_relpath(raw)


@given(
    st.lists(st.sampled_from(["a", "b", ".", "..", "/", "\\", ":", "C:"]), max_size=12).map("".join)
)
def test_never_returns_a_path_that_can_escape(raw: str) -> None:
    try:
        out = safe_relpath(raw)
    except InvalidInput:
        return
    parts = out.split("/")
    assert ".." not in parts and "" not in parts and "." not in parts
    assert not out.startswith("/") and "\\" not in out


def test_safe_join_refuses_links_out_of_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, root / "link")
    assert safe_join(root, "a/b.txt") == root.resolve() / "a" / "b.txt"
    with pytest.raises(InvalidInput, match="outside"):
        safe_join(root, "link/secret.txt")


def test_the_longest_names_a_file_system_takes_pass() -> None:
    assert safe_relpath("a" * 255) == "a" * 255
    assert safe_relpath("/".join(["d" * 200] * 5)) == "/".join(["d" * 200] * 5)


@pytest.mark.parametrize("raw", [None, 3, b"a.txt", ["a"]])
def test_refuses_what_is_not_a_path(raw: object) -> None:
    with pytest.raises(InvalidInput, match="must be"):
        safe_relpath(raw)  # type: ignore[arg-type]
