"""What a tuning worker keeps warm across the jobs it runs.

One builder pool, one runner (its measuring process), the share proof, one XGBoost cost
model per worker (as stock MetaSchedule keeps one cost model for all tasks of a model), and
one connection to the schedule database, whose URL the worker is given once. Starting these
per job cost about 10 s each time; a worker pays it once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tvm.s_tir import meta_schedule as ms

from schedules_db.records import SliceKey
from schedules_db.store import Store
from workers.measure import WarmBuilder, make_builder, make_runner
from workers.search import ModuleHashes
from workers.shares import Share


@dataclass
class WorkerTools:
    """Builder, runner and cost model of one worker; not shared between processes."""

    builder: WarmBuilder
    runner: ms.runner.LocalRunner
    cores: int
    db_url: str
    cost_model: ms.cost_model.XGBModel | None = None
    # record ids the cost model has trained on (its own measurements and earlier ones)
    trained_on: set[int] = field(default_factory=set)
    # targets (JSON) whose share and instruction set this worker has proven
    proven_for: set[str] = field(default_factory=set)
    # slices whose other workloads' records the cost model has trained on (warm model)
    warmed_for: set[SliceKey] = field(default_factory=set)
    measuring_pid: int | None = None
    # the module each stored record scheduled, each trace replayed once per worker
    module_hashes: ModuleHashes = field(default_factory=ModuleHashes)
    _store: Store | None = None

    @property
    def store(self) -> Store:
        """Opened at the first job, so a database problem is that job's error, not a
        worker that never starts."""
        if self._store is None:
            self._store = Store(self.db_url)
        return self._store

    def model(self, warmup_samples: int) -> ms.cost_model.XGBModel:
        if self.cost_model is None:
            self.cost_model = ms.cost_model.XGBModel(num_warmup_samples=warmup_samples,
                                                     num_tuning_cores=self.cores)
        return self.cost_model


def start_tools(cores: int, db_url: str, share: Share) -> WorkerTools:
    cores = max(1, cores)
    runner = make_runner(share.backend.evaluator())
    return WorkerTools(builder=make_builder(cores), runner=runner, cores=cores,
                       db_url=db_url)
