"""Where a share's pool gets its next job: a fixed queue, or a model-level trial budget.

The dispatcher asks `next_job()` whenever one of the share's workers is idle, reports
every result with `finished()`, and gives back the job of a lost worker with
`give_back()`. A source may have nothing to hand out while other jobs of its share run
(a budget waits for their results); it is done when it has nothing and nothing runs.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Protocol

from tunesvc.tuning.budget import BudgetAllocator
from workers.jobs import TaskSpec, TuneJob, TuneResult
from workers.shares import Share


class JobSource(Protocol):
    share: Share

    def next_job(self) -> TuneJob | None: ...

    def finished(self, result: TuneResult) -> None: ...

    def give_back(self, job: TuneJob) -> None: ...

    def parallelism(self) -> int:
        """How many jobs could usefully run at once."""
        ...


class QueuedJobs:
    """A fixed list of jobs, one per task: `--trials-per-task` without `--trials`."""

    def __init__(self, share: Share, jobs: list[TuneJob]) -> None:
        self.share = share
        self.waiting = deque(jobs)

    def next_job(self) -> TuneJob | None:
        return self.waiting.popleft() if self.waiting else None

    def finished(self, result: TuneResult) -> None:
        pass

    def give_back(self, job: TuneJob) -> None:
        self.waiting.appendleft(job)

    def parallelism(self) -> int:
        return len(self.waiting)


MakeJob = Callable[[TaskSpec, int, int], TuneJob]  # (task, cumulative trials, job number)


class BudgetedJobs:
    """Jobs cut from a model-level budget by a `BudgetAllocator`, a chunk at a time."""

    def __init__(self, share: Share, tasks: list[TaskSpec], allocator: BudgetAllocator,
                 make_job: MakeJob) -> None:
        self.share = share
        self.allocator = allocator
        self.make_job = make_job
        self.tasks = {task.shash: task for task in tasks}
        self.retries: deque[TuneJob] = deque()
        self.issued = 0

    def next_job(self) -> TuneJob | None:
        if self.retries:
            return self.retries.popleft()
        chunk = self.allocator.next_chunk()
        if chunk is None:
            return None
        shash, cumulative = chunk
        self.issued += 1
        return self.make_job(self.tasks[shash], cumulative, self.issued)

    def finished(self, result: TuneResult) -> None:
        self.allocator.finished(result.task_shash, result.slice_trials, result.best_run_sec,
                                result.default_run_sec, failed=not result.ok)

    def give_back(self, job: TuneJob) -> None:
        self.retries.append(job)

    def parallelism(self) -> int:
        return len(self.tasks)
