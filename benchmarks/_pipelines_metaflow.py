"""The 10-step no-op pipeline as a Metaflow ``FlowSpec`` (runs in ``.venv-metaflow``).

``python _pipelines_metaflow.py --no-pylint run`` with ``USERNAME`` set and
``METAFLOW_DATASTORE_SYSROOT_LOCAL`` pointing at a temporary directory: Metaflow's local
runtime, local metadata and local datastore, no metadata service. Ten steps in a line
(``start``, ``s1`` ... ``s8``, ``end``), each passing one integer artifact on, as the
Milepost pipeline in ``_pipelines_noop.py`` does. Metaflow runs every step as a task in a
fresh Python process and persists its artifacts in the datastore.
"""

from __future__ import annotations

from metaflow import FlowSpec, step


class NoopFlow(FlowSpec):
    """start -> s1 -> ... -> s8 -> end, each step adding 1 to ``x``."""

    @step
    def start(self) -> None:
        self.x = 0
        self.next(self.s1)

    @step
    def s1(self) -> None:
        self.x += 1
        self.next(self.s2)

    @step
    def s2(self) -> None:
        self.x += 1
        self.next(self.s3)

    @step
    def s3(self) -> None:
        self.x += 1
        self.next(self.s4)

    @step
    def s4(self) -> None:
        self.x += 1
        self.next(self.s5)

    @step
    def s5(self) -> None:
        self.x += 1
        self.next(self.s6)

    @step
    def s6(self) -> None:
        self.x += 1
        self.next(self.s7)

    @step
    def s7(self) -> None:
        self.x += 1
        self.next(self.s8)

    @step
    def s8(self) -> None:
        self.x += 1
        self.next(self.end)

    @step
    def end(self) -> None:
        self.x += 1
        print(f"x = {self.x}")


if __name__ == "__main__":
    NoopFlow()
