"""Evolutionary search that never measures a candidate the slice has already measured.

MetaSchedule's EvolutionarySearch only remembers what it measured in the current run (its
source says so: "TODO: add records from the database to avoid re-measuring"), so a resumed
job could spend trials measuring stored candidates again. This wrapper delegates to it and
drops candidates whose scheduled module matches one already in the database slice.

It also keeps the search to its trial budget itself: the inner search clamps its last batch
to the budget only once, so asking it again after a batch of known candidates would give a
full batch past the budget.

The inner search is asked for `extra` more candidates a round than are measured: it seeds
part of its population with the slice's best records, which its cost model ranks first and
this filter drops. Asked for only a round's worth, a round on a well-tuned task brought a
few fresh candidates and a second full round (about 5-20 s on 2 cores) was spent on the rest.

`ModuleHashes` gives the hashes of stored records' modules, replaying each trace once per
worker: replaying a convolution's trace costs tens of milliseconds, and every job asks
for every record of its slice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

import tvm_ffi
from tvm.ir import IRModule
from tvm.ir.utils import derived_object
from tvm.s_tir import Schedule
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.meta_schedule.database import TuningRecord
from tvm.s_tir.meta_schedule.search_strategy import PySearchStrategy
from tvm.s_tir.schedule import Trace

from schedules_db.records import StoredRecord

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


class ModuleHashes:
    """The scheduled-module hash of each stored record, each trace replayed once: a cache
    keyed by the workload and the trace's text, so a record is never mistaken for another
    (a record id can name another record in another database, or after a delete)."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, bytes], int] = {}

    def of(self, mod: IRModule, rows: Iterable[StoredRecord]) -> set[int]:
        """Hashes of the modules the stored `rows` of workload `mod` measured."""
        return {self._hash(mod, row) for row in rows}

    def _hash(self, mod: IRModule, row: StoredRecord) -> int:
        key = (row.workload_shash, hashlib.sha256(row.trace_json.encode()).digest())
        if key not in self._known:
            schedule = Schedule(mod)
            Trace.apply_json_to_schedule(json.loads(row.trace_json), schedule)
            self._known[key] = module_hash(schedule.mod)
        return self._known[key]


@derived_object
class SkipMeasuredSearch(PySearchStrategy):
    """`inner`'s candidates minus those whose module hash is in `measured`."""

    def __init__(self, inner: ms.search_strategy.SearchStrategy, measured: set[int],
                 extra: int = 0) -> None:
        super().__init__()
        self.inner = inner
        self.measured = set(measured)
        self.extra = extra
        self.skipped = 0
        self.max_trials: int | None = None  # set by pre_tuning; None: no budget
        self.per_round: int | None = None  # set by pre_tuning; None: what the inner gives
        self.given = 0  # candidates handed out for measuring in this run

    def _initialize_with_tune_context(self, context: ms.TuneContext) -> None:
        self.inner._initialize_with_tune_context(context)

    def pre_tuning(self, max_trials: int, num_trials_per_iter: int, design_spaces: list,
                   database: ms.database.Database | None = None,
                   cost_model: ms.cost_model.CostModel | None = None) -> None:
        self.max_trials, self.per_round, self.given = max_trials, num_trials_per_iter, 0
        # with `extra` more to its budget, the inner search's last round still brings
        # `extra` more than are left: this wrapper counts the trials
        self.inner.pre_tuning(max_trials + self.extra, num_trials_per_iter + self.extra,
                              design_spaces, database, cost_model)

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
                fresh = fresh[:self._room(left)]
                self.measured.update(module_hash(c.sch.mod) for c in fresh)
                self.given += len(fresh)
                return fresh
        return None

    def _room(self, left: int | None) -> int | None:
        """How many fresh candidates this round hands out (None: all it has)."""
        limits = [n for n in (left, self.per_round) if n is not None]
        return min(limits) if limits else None

    def notify_runner_results(self, measure_candidates: list[ms.MeasureCandidate],
                              results: list[ms.runner.RunnerResult]) -> None:
        self.inner.notify_runner_results(measure_candidates, results)

    def clone(self) -> SkipMeasuredSearch:
        return SkipMeasuredSearch(self.inner.clone(), self.measured, self.extra)
