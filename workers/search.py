"""Evolutionary search that never measures a candidate the slice has already measured.

MetaSchedule's EvolutionarySearch only remembers what it measured in the current run (its
source says so: "TODO: add records from the database to avoid re-measuring"), so a resumed
job could spend trials measuring stored candidates again. This wrapper delegates to it and
drops candidates whose scheduled module matches one already in the database slice.

It also keeps the search to its trial budget itself: the inner search clamps its last batch
to the budget only once, so asking it again after a batch of known candidates would give a
full batch past the budget.
"""

from __future__ import annotations

from collections.abc import Iterable

import tvm_ffi
from tvm.ir import IRModule
from tvm.ir.utils import derived_object
from tvm.s_tir import Schedule
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.meta_schedule.database import TuningRecord
from tvm.s_tir.meta_schedule.search_strategy import PySearchStrategy

# Rounds in a row that bring only known candidates before the search is declared done.
MAX_STALE_ROUNDS = 5


def measured_modules(records: Iterable[TuningRecord]) -> set[int]:
    """Structural hashes of the scheduled modules the records measured."""
    hashes = set()
    for record in records:
        schedule = Schedule(record.workload.mod)
        record.trace.apply_to_schedule(schedule, remove_postproc=False)
        hashes.add(module_hash(schedule.mod))
    return hashes


def module_hash(mod: IRModule) -> int:
    return int(tvm_ffi.structural_hash(mod))


@derived_object
class SkipMeasuredSearch(PySearchStrategy):
    """`inner`'s candidates minus those whose module hash is in `measured`."""

    def __init__(self, inner: ms.search_strategy.SearchStrategy, measured: set[int]) -> None:
        super().__init__()
        self.inner = inner
        self.measured = set(measured)
        self.skipped = 0
        self.max_trials: int | None = None  # set by pre_tuning; None: no budget
        self.given = 0  # candidates handed out for measuring in this run

    def _initialize_with_tune_context(self, context: ms.TuneContext) -> None:
        self.inner._initialize_with_tune_context(context)

    def pre_tuning(self, max_trials: int, num_trials_per_iter: int, design_spaces: list,
                   database: ms.database.Database | None = None,
                   cost_model: ms.cost_model.CostModel | None = None) -> None:
        self.max_trials, self.given = max_trials, 0
        self.inner.pre_tuning(max_trials, num_trials_per_iter, design_spaces, database,
                              cost_model)

    def post_tuning(self) -> None:
        self.inner.post_tuning()

    def generate_measure_candidates(self) -> list[ms.MeasureCandidate] | None:
        for _ in range(MAX_STALE_ROUNDS):
            left = None if self.max_trials is None else self.max_trials - self.given
            batch = self.inner.generate_measure_candidates() if left is None or left > 0 else None
            if batch is None:
                return None
            fresh = [c for c in batch if module_hash(c.sch.mod) not in self.measured]
            self.skipped += len(batch) - len(fresh)
            if fresh:
                fresh = fresh[:left]
                self.measured.update(module_hash(c.sch.mod) for c in fresh)
                self.given += len(fresh)
                return fresh
        return None

    def notify_runner_results(self, measure_candidates: list[ms.MeasureCandidate],
                              results: list[ms.runner.RunnerResult]) -> None:
        self.inner.notify_runner_results(measure_candidates, results)

    def clone(self) -> SkipMeasuredSearch:
        return SkipMeasuredSearch(self.inner.clone(), self.measured)
