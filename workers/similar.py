"""Workloads like a task's: which stored ones resemble it, and their best schedules tried
on it first.

Two workloads are alike when their task names list the same operators once TVM's
numbering is dropped (`fused_conv2d3_add2_relu1` and `fused_conv2d7_add5_relu4` are both
`conv2d_add_relu`), less alike when only the first operator agrees. A stored schedule is a
trace of MetaSchedule's sampling decisions; on a workload of other shapes its tile sizes
are refitted to the new loop extents (`refit_tile`), every other decision is kept, and a
trace that still does not apply (other blocks, other loops) is skipped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from tvm.s_tir import Schedule
from tvm.ir import IRModule
from tvm.s_tir.meta_schedule.database import Workload
from tvm.s_tir.schedule import Trace
from tvm.target import Target

from schedules_db.ms_adapter import SliceDatabase, stored_workload, to_tuning_record
from schedules_db.neighbours import Neighbour, neighbours
from workers.jobs import TuneJob
from workers.seeding import measure_seeds, replayed
from workers.warm import WorkerTools

TRAILING_NUMBER = re.compile(r"\d+$")
SEEDS_PER_WORKLOAD = 2  # the best schedules of each similar workload tried first


def operator_kind(task_name: str) -> str:
    """The operators a task fuses, without TVM's numbering: `conv2d_add_relu`."""
    parts = task_name.removeprefix("fused_").split("_")
    return "_".join(p for p in (TRAILING_NUMBER.sub("", part) for part in parts) if p)


def likeness(task_name: str, other_name: str) -> int:
    """0: the same operators; 1: the same first operator; 2: anything else."""
    mine, theirs = operator_kind(task_name), operator_kind(other_name)
    if mine and mine == theirs:
        return 0
    if mine and theirs and mine.split("_")[0] == theirs.split("_")[0]:
        return 1
    return 2


def ranked(task_name: str, found: Sequence[Neighbour]) -> list[Neighbour]:
    """`found`, most like the task first."""
    return sorted(found, key=lambda n: (likeness(task_name, n.task_name), n.task_name, n.shash))


def refit_tile(old: Sequence[int], extent: int, max_innermost: int) -> list[int]:
    """Tile factors for `extent` as close to `old` (factors of another extent) as divisors
    allow: from the innermost out, each the largest divisor of what is left that is not
    above the old factor; the outermost takes the rest."""
    factors = [1] * len(old)
    left = extent
    for i in range(len(old) - 1, 0, -1):
        cap = old[i] if i < len(old) - 1 or max_innermost <= 0 else min(old[i], max_innermost)
        factors[i] = max(d for d in range(1, max(1, cap) + 1) if left % d == 0)
        left //= factors[i]
    factors[0] = left
    return factors


def adapted(trace: Trace, mod: IRModule) -> Schedule | None:
    """`trace` applied to `mod` with its tile sizes refitted; None if it does not apply."""
    schedule = Schedule(mod)

    def decide(inst: Any, inputs: list, attrs: list, decision: Any) -> Any:
        if inst.kind.name != "SamplePerfectTile":
            return decision
        extent = int(schedule.get(inputs[0]).extent)  # the loop as replayed so far
        return refit_tile([int(d) for d in decision], extent, int(attrs[1]))

    return replayed(trace, schedule, decide)


def seed_from_similar(job: TuneJob, target: Target, database: SliceDatabase,
                      workload: Workload, tools: WorkerTools, limit: int) -> int:
    """Measure here up to `limit` of the best schedules of the stored workloads most like
    the job's (same operators first) that apply to it; returns how many were measured."""
    alike = [n for n in ranked(job.task.name, neighbours(tools.store, job.slice_key,
                                                          {job.task.shash}))
             if likeness(job.task.name, n.task_name) == 0]
    schedules: list[Schedule] = []
    sources: list[str] = []
    for neighbour in alike:
        if len(schedules) >= limit:
            break
        theirs = stored_workload(tools.store, neighbour.shash)
        for row in tools.store.top_records(neighbour.key, neighbour.shash, SEEDS_PER_WORKLOAD):
            schedule = adapted(to_tuning_record(row, theirs).trace, workload.mod)
            if schedule is not None and len(schedules) < limit:
                schedules.append(schedule)
                sources.append(neighbour.task_name or neighbour.shash[:12])
    if not schedules:
        print(f"similar: no stored {operator_kind(job.task.name)} schedule applies")  # job log
        return 0
    measured = measure_seeds(schedules, target, database, workload, tools)
    print(f"similar: measured {measured} schedules of {sorted(set(sources))} first")
    return measured
