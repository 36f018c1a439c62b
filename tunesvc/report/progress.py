"""What `tune` shows while it runs.

On a terminal: a live bar per share (trials measured out of those planned, elapsed time,
ETA, and the model's estimated latency from the best kernels so far); failed jobs are
printed above the bars as they happen. Elsewhere (a pipe, a log, CI): one line per
finished job, so a log reads the same as before. `quiet` shows nothing until the end.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, \
    TimeElapsedColumn, TimeRemainingColumn

from tunesvc.tuning.estimate import Part, estimated_latency
from workers.jobs import TuneResult
from workers.shares import Share


class ShareBest:
    """The model's latency estimated from the best kernel of each task tuned so far."""

    def __init__(self, tasks: int) -> None:
        self.tasks = tasks
        self._best: dict[str, Part] = {}  # by task

    def add(self, result: TuneResult, uses: int) -> None:
        if result.ok and result.best_run_sec is not None:
            self._best[result.task_shash] = Part.of_result(result, uses, result.best_run_sec)

    def text(self) -> str:
        if not self._best:
            return "no kernel yet"
        estimate = estimated_latency(self._best.values()) or 0.0
        return f"est. {estimate * 1e3:.2f} ms from {len(self._best)}/{self.tasks} tasks"


class TuneProgress:
    """Context manager; call `update(result, line)` for every finished job."""

    def __init__(self, planned: dict[Share, int | None], uses: dict[str, int],
                 stream: TextIO | None = None, quiet: bool = False,
                 every_job: bool = False) -> None:
        self.stream = stream or sys.stdout
        self.quiet = quiet
        self.every_job = every_job  # a line per job on a terminal too
        self.uses = uses
        self.best = {share: ShareBest(len(uses)) for share in planned}
        self.live = not quiet and self.stream.isatty()
        self._progress: Progress | None = None
        self._bars: dict[Share, TaskID] = {}
        self._planned = planned

    def __enter__(self) -> TuneProgress:
        if self.live:
            self._progress = Progress(
                TextColumn("{task.description:<9}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("trials"), TimeElapsedColumn(), TextColumn("ETA"),
                TimeRemainingColumn(), TextColumn("{task.fields[best]}"),
                console=Console(file=self.stream), transient=False)
            self._progress.start()
            self._bars = {share: self._progress.add_task(share.label, total=planned,
                                                         best="no kernel yet")
                          for share, planned in self._planned.items()}
        return self

    def update(self, result: TuneResult, line: Callable[[], str]) -> None:
        """A job finished; `line` renders its one-line summary (printed off a terminal)."""
        self.best[result.share].add(result, self.uses.get(result.task_name, 1))
        if self.quiet:
            return
        if self._progress is None:
            self.say(line())
            return
        if self.every_job or not result.ok:
            self.say(line())
        self._progress.update(self._bars[result.share], advance=result.trials_measured,
                              best=self.best[result.share].text())

    def say(self, text: str) -> None:
        """A line for the user: above the bars while they are live."""
        if self._progress is None:
            print(text, file=self.stream, flush=True)
        else:  # job lines hold '[3/8]', which rich would take for markup
            self._progress.console.print(text, markup=False, highlight=False)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()
