"""Work directories of an interrupted ingest are removed by the next run, never a live one's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest

import milepost

# A registration that stops after staging its input and waits for a line on stdin.
CHILD = """
import sys
import pandas as pd
import milepost
from milepost.data import _ingest

real = _ingest.content_hash

def wait_then_hash(*args, **kwargs):
    print("staged", flush=True)
    sys.stdin.readline()
    return real(*args, **kwargs)

_ingest.content_hash = wait_then_hash
milepost.configure(home=sys.argv[1])
milepost.data.register(sys.argv[2], pd.DataFrame({"x": range(1000)}))
print("done", flush=True)
"""


def _start(home: Path, name: str, tmp: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MILEPOST_")}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(home), name],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env | {"TMPDIR": str(tmp)},
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "staged"
    return child


def _workdirs(tmp: Path) -> set[str]:
    return {p.name for p in tmp.iterdir() if p.name.startswith("milepost-")}


def test_the_next_run_removes_what_an_interrupted_ingest_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    home = tmp_path / "home"
    killed = _start(home, "killed", tmp)
    left = _workdirs(tmp)
    assert len(left) == 1  # the interrupted run's staged files
    killed.send_signal(signal.SIGKILL)
    killed.communicate()
    live = _start(home, "live", tmp)  # another ingest, still running
    live_dir = _workdirs(tmp) - left
    try:
        milepost.configure(home=home)
        milepost.data.register("next", pd.DataFrame({"y": [1, 2, 3]}))
        assert _workdirs(tmp) == live_dir  # the dead one is gone, the live one kept
        out, _ = live.communicate("\n", timeout=120)
        assert out.strip() == "done"
    finally:
        if live.poll() is None:
            live.kill()
            live.communicate()
    assert _workdirs(tmp) == set()
    assert [d.name for d in milepost.data.list_datasets()] == ["live", "next"]
