"""Siblings: workloads of the same operator on the same shapes at the same share, told
apart only by what is fused after it (a convolution with and without a residual add).

A model runs such pairs all the time, and their searches are independent: one may find
a schedule twice as fast as the other's best (seen in ResNet-18: 0.49 against 1.10 ms for
the same Winograd convolution). So before each job's search, the best schedules of the
siblings that beat this task's best are tried on it. A sibling's trace does not replay
on this workload as it is (it names blocks this one lacks, or lacks some), so its
sampling decisions (tile sizes, unrolling, compute locations) are replayed on this
workload's own design space with the most alike instruction sequence, and MetaSchedule's
postprocessors applied, as for any candidate. A schedule the slice already measured is
not measured again.
"""

from __future__ import annotations

from difflib import SequenceMatcher
from typing import Any

from tvm.ir import IRModule
from tvm.s_tir import Schedule
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.schedule import Trace
from tvm.s_tir.meta_schedule.arg_info import ArgInfo
from tvm.s_tir.meta_schedule.database import Workload
from tvm.target import Target

from schedules_db.ms_adapter import SliceDatabase, stored_workload, to_tuning_record
from schedules_db.neighbours import Neighbour, neighbours
from workers.jobs import TuneJob
from workers.search import module_hash
from workers.seeding import measure_seeds, replayed
from workers.similar import TRAILING_NUMBER
from workers.warm import WorkerTools

# Operators that only follow the main one: a sibling may have more or fewer of them.
EPILOGUE = frozenset({"add", "relu", "relu6", "clip", "multiply", "subtract", "divide",
                      "minimum", "maximum", "sigmoid", "tanh", "cast"})
BEST_PER_SIBLING = 2
SIBLING_SEEDS = 2  # at most this many measured per job


def main_operator(task_name: str) -> str:
    """A task's operators without TVM's numbering and without the elementwise ones after
    the main operator: `fused_winograd4_conv2d1_add1_add2_relu11` -> `winograd4_conv2d`."""
    parts = [part if part.startswith("winograd") else TRAILING_NUMBER.sub("", part)
             for part in task_name.removeprefix("fused_").split("_")]
    while len(parts) > 1 and parts[-1] in EPILOGUE:
        parts.pop()
    return "_".join(part for part in parts if part)


def leading_shapes(mod: IRModule) -> tuple[tuple[int, ...], ...]:
    """The shapes of the main function's first two buffers (data and weights of a
    convolution or a matrix product)."""
    args = ArgInfo.from_prim_func(mod["main"])[:2]
    return tuple(tuple(int(dim) for dim in arg.shape) for arg in args)


def kin_of(task_name: str, mod: IRModule) -> str:
    """What siblings have in common: the main operator and the leading shapes."""
    return f"{main_operator(task_name)}{leading_shapes(mod)}"


def siblings(job: TuneJob, tools: WorkerTools) -> list[tuple[Neighbour, Workload]]:
    """The stored workloads at the job's exact share that are the job's siblings, each with
    its workload as stored."""
    mine = kin_of(job.task.name, job.task.mod)
    found = []
    for neighbour in neighbours(tools.store, job.slice_key, {job.task.shash}):
        if neighbour.key != job.slice_key or \
                main_operator(neighbour.task_name) != main_operator(job.task.name):
            continue  # (read the workload only for a likely sibling)
        theirs = stored_workload(tools.store, neighbour.shash)
        if kin_of(neighbour.task_name, theirs.mod) == mine:
            found.append((neighbour, theirs))
    return found


def sampled(trace: Trace) -> list[tuple[str, Any]]:
    """The trace's sampling instructions in order: (kind, decision)."""
    return [(inst.kind.name, trace.decisions[inst]) for inst in trace.insts
            if inst in trace.decisions]


def _kinds(trace: Trace) -> list[str]:
    """The instruction kinds of the trace before its postprocessing."""
    names = [inst.kind.name for inst in trace.insts]
    return names[:names.index("EnterPostproc")] if "EnterPostproc" in names else names


def transplanted(donor: Trace, spaces: list[Schedule], postprocs: list[ms.postproc.Postproc],
                 mod: IRModule) -> Schedule | None:
    """`donor`'s sampling decisions replayed on the design space of `mod` most like the
    donor's trace, then postprocessed; None if no space samples the same things in the
    same order, or a postprocessor rejects the result."""
    given = sampled(donor)
    fitting = [space for space in spaces
               if [kind for kind, _ in sampled(space.trace)] == [kind for kind, _ in given]]
    if not fitting:
        return None
    space = max(fitting, key=lambda s: SequenceMatcher(None, _kinds(s.trace),
                                                        _kinds(donor)).ratio())
    decisions = iter([decision for _, decision in given])

    def decide(_inst: Any, _inputs: list, _attrs: list, decision: Any) -> Any:
        return decision if decision is None else next(decisions)

    schedule = replayed(space.trace, Schedule(mod), decide)
    if schedule is None:
        return None
    # marked as MetaSchedule marks its candidates: a search that replays this trace from
    # the database drops what follows the mark and postprocesses again (else a weight's
    # layout would be rewritten twice)
    schedule.enter_postproc()
    return schedule if all(postproc.apply(schedule) for postproc in postprocs) else None


def seed_from_siblings(job: TuneJob, target: Target, database: SliceDatabase,
                       workload: Workload, tools: WorkerTools, best_sec: float | None,
                       limit: int) -> int:
    """Measure here, fastest first, up to `limit` of the siblings' best schedules that beat
    `best_sec` (this slice's best; None: any) and that the slice has not measured; returns
    how many were measured."""
    donors = [(row, theirs, sibling.task_name or sibling.shash[:12])
              for sibling, theirs in siblings(job, tools)
              for row in tools.store.top_records(sibling.key, sibling.shash, BEST_PER_SIBLING)
              if row.mean_run_sec is not None
              and (best_sec is None or row.mean_run_sec < best_sec)]
    if not donors:
        return 0
    measured = tools.module_hashes.of(
        workload.mod, tools.store.all_records(job.slice_key, job.task.shash))
    found: list[tuple[float, Schedule, str]] = []
    context = ms.TuneContext(mod=workload.mod, target=target, space_generator="post-order-apply",
                             task_name=job.task.name, num_threads=1)
    spaces, postprocs = context.generate_design_space(), context.space_generator.postprocs
    for row, theirs, name in donors:
        schedule = transplanted(to_tuning_record(row, theirs).trace, spaces, postprocs,
                                workload.mod)
        if schedule is not None and module_hash(schedule.mod) not in measured:
            measured.add(module_hash(schedule.mod))
            found.append((row.mean_run_sec, schedule, name))
    found = sorted(found, key=lambda item: item[0])[:min(SIBLING_SEEDS, limit)]
    if not found:
        return 0
    count = measure_seeds([schedule for _, schedule, _ in found], target, database, workload,
                          tools)
    print(f"siblings: measured {count} schedules of {sorted({name for *_, name in found})} "
          "first")  # job log
    return count
