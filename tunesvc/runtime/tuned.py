"""Run a model with the kernels tuned for the share it runs at.

`load()` picks, per operator, the best record under the lookup rule (exact share, nearest
tuned share, else TVM's default schedule), per convolution the algorithm (direct or a
Winograd variant) whose kernel measured fastest and per fusable pair of convolutions
whether one kernel measured faster than two, compiles with exactly those applied,
and caches the compiled library on disk under a key that names the schedules (each
record's workload and trace), so a new record invalidates it. It never writes records
(a new, empty database gets its tables).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import tvm
from tvm.s_tir import meta_schedule as ms
from tvm.target import Target

from schedules_db import Lookup, ShareChoice, Store, best_record
from schedules_db.inventory import workloads_by_other_target
from schedules_db.ms_adapter import to_tuning_record
from tunesvc.pipeline.compiler import PIPELINE_VERSION, compile_with_database
from tunesvc.config import compiled_dir, resolve_db_url
from tunesvc.pipeline.conv_algorithms import DIRECT, FUSED, ConvPlan, ConvSite, choose_plan
from tunesvc.pipeline.importer import TaskSet, extract_task_set, to_relax
from tunesvc.models.base import LoadedModel, Shape
from tunesvc.models.spec import ModelSpec
from tunesvc.errors import ModelStepError, UserError, first_line, model_step
from tunesvc.targets import ShareTarget, TargetSpec
from tunesvc.runtime.files import write_whole
from tunesvc.runtime.vm import VmModel
from workers.cpu_isa import host_mismatch, isa_of
from workers.jobs import TaskSpec
from workers.shares import BACKENDS, Share

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OperatorSource:
    """Where one operator's schedule came from."""

    task_name: str
    weight: int
    lookup: Lookup
    algorithm: str = DIRECT  # how its convolution is computed, where it has one

    @property
    def tuned_run_sec(self) -> float | None:
        return self.lookup.record.mean_run_sec if self.lookup.record else None


class TunedModel(VmModel):
    """A compiled model: call it with NumPy arrays (one per input, in input order)."""

    def __init__(self, compiled: CompileInput, library_path: Path,
                 sources: list[OperatorSource], cache_hit: bool) -> None:
        super().__init__(library_path, compiled.at.target.get_target_device_type(),
                         len(compiled.model.input_shapes))
        self.model = compiled.model
        self.compiled = compiled
        self.at = compiled.at
        self.sources = sources
        self.cache_hit = cache_hit

    @property
    def share(self) -> Share:
        return self.at.share

    @property
    def target(self) -> Target:
        return self.at.target

    def untuned(self) -> TunedModel:
        """The same model at the same share with TVM's default schedules only."""
        untuned = replace(self.compiled, plan=ConvPlan())  # direct convolutions only
        default = ShareChoice(self.share.percent, None, "none")
        none = [OperatorSource(t.name, t.weight, Lookup(t.shash, default, None))
                for t in untuned.tasks if not t.competes_with]
        path, cache_hit = _compiled_library(untuned, none)
        return TunedModel(self.compiled, path, none, cache_hit)


@dataclass(frozen=True)
class CompileInput:
    """What a library is compiled from: the imported model, its target at its share and
    its tasks."""

    model: LoadedModel
    mod: tvm.IRModule
    at: ShareTarget
    tasks: list[TaskSpec]
    sites: list[ConvSite]
    plan: ConvPlan = ConvPlan()  # the algorithm of each convolution
    pairs: list[ConvSite] = field(default_factory=list)


def load(model: str | ModelSpec | LoadedModel, target: str = "cpu", share: int | None = None,
         db: str | None = None,
         input_shapes: dict[str, Shape] | None = None, hold: bool = False,
         input_values: dict[str, str] | None = None, fused_pairs: bool = True) -> TunedModel:
    """Compile `model` (a zoo name, an ONNX path, `torch:package.module:factory`, or a
    model already loaded, e.g. by `tunesvc.models.pytorch.from_module`) with the schedules
    tuned for `share`.

    With `share=None` the share is the one this process runs at: on CPU its cores out of
    the machine's (so a process started under `taskset` on 1 of 2 cores is at 50%), on GPU
    its MPS thread percentage (100 if unset). The calling process is left as it is unless
    `hold=True`, which holds it to the share first (CPU: the share's cores and TVM's
    thread count; GPU: the MPS limit, before any CUDA context): what `tunesvc run` does.
    Without it, a warning says when the process does not run at the share.
    `fused_pairs=False` runs every 1x1 + depthwise pair as two kernels, whatever measured
    faster (to measure what fusing them brings).
    """
    spec = TargetSpec(target)
    spec.validate()
    spec.require_device()
    at = spec.at(resolve_share(spec, share))
    check_runs_here(at)
    _hold_or_warn(at.share, hold)
    if isinstance(model, str):
        model = ModelSpec(model, dict(input_shapes or {}), dict(input_values or {}))
    loaded = model if isinstance(model, LoadedModel) else model.load()
    mod = to_relax(loaded)
    task_set = extract_task_set(mod, at.target)
    task_set = task_set if fused_pairs else task_set.without_pairs()
    every = choose_records(task_set.tasks, at, resolve_db_url(db))
    plan, sources = with_algorithms(every, task_set)
    compiled = CompileInput(loaded, mod, at, task_set.tasks, task_set.sites, plan,
                            task_set.pairs)
    return _tuned_model(compiled, sources)


def _tuned_model(compiled: CompileInput, sources: list[OperatorSource]) -> TunedModel:
    """The compiled library loaded; a cached one that cannot be loaded (a damaged file) is
    compiled again, once."""
    path, cache_hit = _compiled_library(compiled, sources)
    try:
        return TunedModel(compiled, path, sources, cache_hit)
    except ModelStepError:
        if not cache_hit:
            raise
    log.warning("cached library %s cannot be loaded; compiling it again", path)
    path.unlink(missing_ok=True)
    path, cache_hit = _compiled_library(compiled, sources)
    return TunedModel(compiled, path, sources, cache_hit)


def check_runs_here(at: ShareTarget) -> None:
    """UserError if code for `at`'s target cannot run on this host as it was tuned."""
    problem = host_mismatch(at.attrs)
    if problem is not None:
        raise UserError(f"cannot run here: {problem}")


def resolve_share(spec: TargetSpec, share: int | None) -> Share:
    """The share asked for (ShareError if it cannot exist here), else the one this
    process runs at."""
    backend = BACKENDS[spec.share_kind]
    resolved = backend.current() if share is None else Share(spec.share_kind, share)
    backend.validate(resolved)
    return resolved


def _hold_or_warn(share: Share, hold: bool) -> None:
    if hold:
        share.backend.hold(share)
    elif share.backend.current() != share:
        log.warning("this process runs at %s, not at %s: the model runs with the process's "
                    "resources (load(..., hold=True) holds it to the share)",
                    share.backend.current().label, share.label)


def choose_records(tasks: list[TaskSpec], at: ShareTarget,
                   db_url: str) -> list[OperatorSource]:
    """Per task, the record the lookup rule selects (in `schedules_db.lookup`)."""
    with Store(db_url) as store:
        return [OperatorSource(task.name, task.weight, best_record(store, at.key, task.shash))
                for task in tasks]


def with_algorithms(sources: list[OperatorSource],
                    task_set: TaskSet) -> tuple[ConvPlan, list[OperatorSource]]:
    """Per convolution the algorithm whose operators measured fastest, and the operators
    the model then runs (the variants not chosen left out)."""
    by_shash = {s.lookup.workload_shash: s for s in sources}
    plan = choose_plan(task_set.sites, lambda shash: by_shash[shash].lookup.run_sec
                       if shash in by_shash else None, task_set.pairs)
    chosen = [(site, plan.algorithm(site.index)) for site in task_set.sites] + \
        [(site, plan.pair_algorithm(site.index)) for site in task_set.pairs]
    algorithm_of = {task: algorithm for site, algorithm in chosen
                    for task in site.tasks(algorithm)}
    unused = (_variant_tasks(task_set.sites) | _variant_tasks(task_set.pairs, direct=False)) \
        - set(algorithm_of)
    unused |= _spared(chosen, {s.lookup.workload_shash: s.weight for s in sources})
    return plan, [replace(s, algorithm=algorithm_of.get(s.lookup.workload_shash, DIRECT))
                  for s in sources if s.lookup.workload_shash not in unused]


def _variant_tasks(sites: list[ConvSite], direct: bool = True) -> set[str]:
    """Every task that is one algorithm of some site (direct ones too, if `direct`)."""
    return {site.task(name) for site in sites
            for name in ((DIRECT,) if direct else ()) + tuple(site.variants)}


def _spared(chosen: list[tuple[ConvSite, str]], weights: dict[str, int]) -> set[str]:
    """The direct tasks of fused pairs that the model no longer calls: every call of
    their workload is inside a pair that runs fused."""
    fused = Counter(task for site, algorithm in chosen if algorithm == FUSED
                    for task in site.tasks(DIRECT))
    return {task for task, count in fused.items() if count >= weights.get(task, 0)}


def _compiled_library(compiled: CompileInput, sources: list[OperatorSource]) -> tuple[Path, bool]:
    name = _cache_key(compiled.model, compiled.at, sources, compiled.plan)
    path = compiled_dir() / f"{name}.so"
    if path.exists():
        return path, True
    try:
        executable = compile_with_database(compiled.mod, compiled.at.target,
                                           _selected_database(compiled.tasks, sources),
                                           compiled.plan)
    except Exception as exc:  # TVM's passes raise many types; the log keeps the traceback
        log.exception("compiling %s failed", compiled.model.source)
        first = first_line(exc)
        raise UserError(f"TVM cannot compile {compiled.model.source}: {first}") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    # Export next to the final name, then rename: a crash never leaves half a library.
    with model_step("writing the compiled library", compiled.model.source):
        write_whole(path, lambda staged: executable.export_library(str(staged)))
    return path, False


def _cache_key(model: LoadedModel, at: ShareTarget, sources: list[OperatorSource],
               plan: ConvPlan) -> str:
    """Names the schedules by what they are (workload and trace), not by record id: ids
    repeat across databases, and SQLite gives a deleted record's id to the next one."""
    schedules = sorted(f"{r.workload_shash}:{r.trace_json}" for r in
                       (s.lookup.record for s in sources) if r is not None)
    text = "|".join([tvm.__version__, PIPELINE_VERSION, model.fingerprint,
                     at.json, repr(schedules), repr(plan.algorithms), repr(plan.pairs)])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _selected_database(tasks: list[TaskSpec],
                       sources: list[OperatorSource]) -> ms.database.MemoryDatabase:
    """An in-memory MetaSchedule database holding exactly the selected records."""
    by_shash = {task.shash: task for task in tasks}
    database = ms.database.MemoryDatabase()
    for source in sources:
        record = source.lookup.record
        if record is None:
            continue
        workload = database.commit_workload(by_shash[record.workload_shash].mod)
        database.commit_tuning_record(to_tuning_record(record, workload))
    return database


@dataclass(frozen=True)
class OtherTargetRecords:
    """Records of this model's operators tuned for another target, which a run cannot use."""

    target_key: str
    isa: str
    operators: int
    reason: str


def records_for_other_targets(tuned: TunedModel, db_url: str) -> list[OtherTargetRecords]:
    """For operators left untuned: which other targets of the same kind hold records."""
    untuned = [s.lookup.workload_shash for s in tuned.sources if s.lookup.record is None]
    key = tuned.at.key
    with Store(db_url) as store:
        found = workloads_by_other_target(store, untuned, key.target_kind, key.share_kind,
                                          key.target_key)
    here = isa_of(tuned.at.attrs)
    return [
        OtherTargetRecords(other, isa_of(json.loads(other)), count,
                           f"tuned for {isa_of(json.loads(other))}; this run is for {here}")
        for other, count in found.items()
    ]

