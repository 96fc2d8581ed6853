"""Per-step training metrics: one callable that trainers report to, and its CSV + TensorBoard sink.

Trainers in farl_policy / farl_safety take an optional `log: MetricLog` and call
`log(stage, step, {"loss": ...})`; they know nothing about files.  The CLI jobs pass a
`MetricsWriter`, which appends to `metrics.csv` in long format (stage, step, name, value: every
stage has its own metric names, and long rows load straight into pandas or a spreadsheet pivot)
and mirrors each value to TensorBoard as `stage/name`.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType

MetricLog = Callable[[str, int, Mapping[str, float]], None]


class MetricsWriter:
    """`metrics.csv` + TensorBoard event files in `directory`; use as a context manager."""

    def __init__(self, directory: Path, tensorboard: bool = True) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "metrics.csv"
        self._file = open(self.path, "a", newline="")  # noqa: SIM115 - closed in close()
        self._csv = csv.writer(self._file)
        if self._file.tell() == 0:
            self._csv.writerow(["stage", "step", "name", "value"])
        self._tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(directory / "tensorboard"))

    def __call__(self, stage: str, step: int, values: Mapping[str, float]) -> None:
        for name, value in values.items():
            self._csv.writerow([stage, step, name, f"{float(value):.6g}"])
            if self._tb is not None:
                self._tb.add_scalar(f"{stage}/{name}", float(value), step)

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()

    def __enter__(self) -> MetricsWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()
