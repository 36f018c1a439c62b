"""Seeds: schedules measured at a job's share before its search starts.

Cross-share transfer (`workers.transfer`) and similar workloads (`workers.similar`) hand
schedules of the job's workload here. Each is measured at this share and committed to the
job's slice as a trial, so the evolutionary search's initial population (MetaSchedule picks
the slice's best records into it) and the worker's cost model both start from them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from tvm.s_tir.schedule import Trace
from tvm.s_tir import Schedule
from tvm.s_tir.meta_schedule.arg_info import ArgInfo
from tvm.s_tir.meta_schedule.database import TuningRecord, Workload
from tvm.s_tir import meta_schedule as ms
from tvm.target import Target

from schedules_db.ms_adapter import SliceDatabase
from schedules_db.records import FAILED_RUN_SECS
from workers.measure import measure_candidates
from workers.warm import WorkerTools

log = logging.getLogger(__name__)
Decide = Callable[[Any, list, list, Any], Any]  # TVM's decision_provider


def replayed(trace: Trace, schedule: Schedule, decide: Decide | None = None) -> Schedule | None:
    """`schedule` with `trace` applied (its decisions changed by `decide`, if given); None
    when it does not apply there (other blocks or loops), as MetaSchedule skips it."""
    try:
        trace.apply_to_schedule(schedule, remove_postproc=False, decision_provider=decide)
    except Exception:
        log.warning("a stored trace does not apply to this workload", exc_info=True)
        return None
    return schedule


def measure_seeds(schedules: list[Schedule], target: Target, database: SliceDatabase,
                  workload: Workload, tools: WorkerTools) -> int:
    """Measure each schedule of `workload` here and commit it to the job's slice (its trace
    as applied, failures as MetaSchedule records them); returns how many were measured.
    Each schedule's arguments are read from the scheduled function, as MetaSchedule's
    search does: a schedule whose postprocessing rewrote a weight's layout (every CPU
    convolution's) takes that weight in the new layout."""
    if not schedules:
        return 0
    candidates = [ms.MeasureCandidate(schedule, ArgInfo.from_entry_func(schedule.mod,
                                                                          remove_preproc=True))
                  for schedule in schedules]
    secs = measure_candidates(candidates, target, tools.builder, tools.runner)
    for candidate, run_secs in zip(candidates, secs):
        database.commit_tuning_record(TuningRecord(
            candidate.sch.trace, workload, run_secs or list(FAILED_RUN_SECS), target,
            candidate.args_info))
    return len(schedules)
