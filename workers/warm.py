"""What a tuning worker keeps warm across the jobs it runs.

One builder pool, one runner (its measuring process), the share proof, and one XGBoost
cost model per worker, as stock MetaSchedule keeps one cost model for all tasks of a
model. Starting these per job cost about 10 s each time; a worker pays it once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tvm.s_tir import meta_schedule as ms

from workers.measure import WarmBuilder, make_builder, make_runner


@dataclass
class WorkerTools:
    """Builder, runner and cost model of one worker; not shared between processes."""

    builder: WarmBuilder
    runner: ms.runner.LocalRunner
    cores: int
    cost_model: ms.cost_model.XGBModel | None = None
    # record ids the cost model has trained on (its own measurements and earlier ones)
    trained_on: set[int] = field(default_factory=set)
    # targets (JSON) whose share and instruction set this worker has proven
    proven_for: set[str] = field(default_factory=set)
    measuring_pid: int | None = None

    def model(self, warmup_samples: int) -> ms.cost_model.XGBModel:
        if self.cost_model is None:
            self.cost_model = ms.cost_model.XGBModel(num_warmup_samples=warmup_samples,
                                                     num_tuning_cores=self.cores)
        return self.cost_model


def start_tools(cores: int) -> WorkerTools:
    cores = max(1, cores)
    return WorkerTools(builder=make_builder(cores), runner=make_runner(), cores=cores)
