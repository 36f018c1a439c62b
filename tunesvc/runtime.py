"""Run a model with the kernels tuned for the share it runs at.

`load()` picks, per operator, the best record under the lookup rule (exact share, nearest
tuned share, else TVM's default schedule), compiles with exactly those records applied,
and caches the compiled library on disk under a key that names the records, so a new
record invalidates it. It never writes records (a new, empty database gets its tables).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tvm
from tvm import relax
from tvm.s_tir import meta_schedule as ms
from tvm.target import Target

from schedules_db import Lookup, Store, best_record, untuned_lookup
from schedules_db.inventory import workloads_by_other_target
from schedules_db.ms_adapter import slice_key_for, to_tuning_record
from schedules_db.targetkey import target_json
from tunesvc.config import compiled_dir, resolve_db_url
from tunesvc.importer import extract_tasks, to_relax
from tunesvc.models import LoadedModel, Shape, load_model
from tunesvc.errors import UserError
from tunesvc.targets import TargetSpec, require_gpu
from tunesvc.timing import LatencyStats, time_calls
from workers.cpu_isa import host_mismatch, isa_of
from workers.jobs import TaskSpec
from workers.pinning import TVM_THREADS_ENV
from workers.share import MPS_PERCENT_ENV, Share, parse_percent


# The cores this process had before any share held it: the "machine" a CPU share is of.
_PROCESS_CORES = sorted(os.sched_getaffinity(0))


@dataclass(frozen=True)
class OperatorSource:
    """Where one operator's schedule came from."""

    task_name: str
    weight: int
    lookup: Lookup

    @property
    def tuned_run_sec(self) -> float | None:
        return self.lookup.record.mean_run_sec if self.lookup.record else None


class TunedModel:
    """A compiled model: call it with NumPy arrays (one per input, in input order)."""

    def __init__(self, model: LoadedModel, share: Share, target: Target,
                 library_path: Path, sources: list[OperatorSource], cache_hit: bool,
                 compiled: CompileInput) -> None:
        self.model = model
        self.compiled = compiled
        self.share = share
        self.target = target
        self.library_path = library_path
        self.sources = sources
        self.cache_hit = cache_hit
        self.device = tvm.cpu() if target.kind.name == "llvm" else tvm.cuda(0)
        self._vm = relax.VirtualMachine(tvm.runtime.load_module(str(library_path)), self.device)

    def _inputs(self, arrays: tuple[np.ndarray, ...]) -> list[tvm.runtime.Tensor]:
        if len(arrays) != len(self.model.input_shapes):
            raise ValueError(f"expected {len(self.model.input_shapes)} inputs, got {len(arrays)}")
        return [tvm.runtime.tensor(np.ascontiguousarray(a), self.device) for a in arrays]

    def __call__(self, *arrays: np.ndarray) -> list[np.ndarray]:
        out = self._vm["main"](*self._inputs(arrays))
        outputs = [out] if isinstance(out, tvm.runtime.Tensor) else list(out)
        return [o.numpy() for o in outputs]

    def benchmark(self, *arrays: np.ndarray, runs: int = 30) -> LatencyStats:
        """Latency of `runs` calls, inputs already on the device (see `tunesvc.timing`)."""
        tensors, main = self._inputs(arrays), self._vm["main"]

        def call() -> None:
            main(*tensors)
            self.device.sync()

        return time_calls(call, runs)

    def untuned(self) -> TunedModel:
        """The same model at the same share with TVM's default schedules only."""
        none = [OperatorSource(s.task_name, s.weight, untuned_lookup(s.lookup))
                for s in self.sources]
        path, cache_hit = _compiled_library(self.compiled, none)
        return TunedModel(self.model, self.share, self.target, path, none, cache_hit,
                          self.compiled)


@dataclass(frozen=True)
class CompileInput:
    """What a library is compiled from: the imported model, its target and its tasks."""

    model: LoadedModel
    mod: tvm.IRModule
    target: Target
    tasks: list[TaskSpec]


def load(model: str, target: str = "cpu", share: int | None = None, db: str | None = None,
         input_shapes: dict[str, Shape] | None = None) -> TunedModel:
    """Compile `model` (a zoo name or an ONNX path) with the schedules tuned for `share`.

    With `share=None` the share is read from the process: on GPU from
    CUDA_MPS_ACTIVE_THREAD_PERCENTAGE (100 if unset), on CPU from this process's cores.
    """
    spec = TargetSpec(target)
    spec.validate()
    if spec.share_kind == "gpu":
        require_gpu()
    resolved = resolve_share(spec, share)
    tvm_target = spec.for_share(resolved)
    check_runs_here(tvm_target)
    hold_process_to(resolved)
    loaded = load_model(model, input_shapes)
    mod = to_relax(loaded)
    compiled = CompileInput(loaded, mod, tvm_target, extract_tasks(mod, tvm_target))
    sources = choose_records(compiled.tasks, tvm_target, resolved, resolve_db_url(db))
    path, cache_hit = _compiled_library(compiled, sources)
    return TunedModel(loaded, resolved, tvm_target, path, sources, cache_hit, compiled)


def check_runs_here(target: Target) -> None:
    """UserError if code for `target` cannot run on this host as it was tuned."""
    problem = host_mismatch(json.loads(str(target)))
    if problem is not None:
        raise UserError(f"cannot run here: {problem}")


def resolve_share(spec: TargetSpec, share: int | None) -> Share:
    """The share asked for, else the one this process runs at. ShareError if invalid."""
    if share is not None:
        return Share(spec.share_kind, share)
    if spec.share_kind == "gpu":
        return Share("gpu", parse_percent(os.environ.get(MPS_PERCENT_ENV, "100")))
    cores, machine = len(os.sched_getaffinity(0)), len(_PROCESS_CORES)
    return Share("cpu", max(1, min(100, round(100 * cores / machine))))


def hold_process_to(share: Share) -> None:
    """Run this process at `share`: first cores of its affinity on CPU, MPS limit on GPU.

    The GPU limit only takes effect if no CUDA context exists yet in this process.
    """
    if share.kind == "gpu":
        os.environ[MPS_PERCENT_ENV] = str(share.percent)
        return
    cores = share_cores(share)
    os.sched_setaffinity(0, _PROCESS_CORES[:cores])
    os.environ[TVM_THREADS_ENV] = str(cores)


def share_cores(share: Share) -> int:
    """Cores a CPU share of this process's machine (its cores at start) holds."""
    return share.core_count(len(_PROCESS_CORES))


def choose_records(tasks: list[TaskSpec], target: Target, share: Share,
                   db_url: str) -> list[OperatorSource]:
    """Per task, the record the lookup rule selects (in `schedules_db.lookup`)."""
    key = slice_key_for(target, share.kind, share.percent)
    store = Store(db_url)
    try:
        return [
            OperatorSource(task.name, task.weight,
                           best_record(store, key.target_key, key.target_kind, share.kind,
                                       share.percent, task.shash))
            for task in tasks
        ]
    finally:
        store.close()


def _compiled_library(compiled: CompileInput, sources: list[OperatorSource]) -> tuple[Path, bool]:
    path = compiled_dir() / f"{_cache_key(compiled.model, compiled.target, sources)}.so"
    if path.exists():
        return path, True
    executable = ms.relax_integration.compile_relax(
        _selected_database(compiled.tasks, sources), compiled.mod, compiled.target, None)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Export next to the final name, then rename: a crash never leaves half a library.
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        staged = Path(tmp) / path.name
        executable.export_library(str(staged))
        os.replace(staged, path)
    return path, False


def _cache_key(model: LoadedModel, target: Target, sources: list[OperatorSource]) -> str:
    records = sorted(s.lookup.record.id for s in sources if s.lookup.record is not None)
    text = "|".join([tvm.__version__, model.fingerprint, target_json(target), repr(records)])
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
    key = slice_key_for(tuned.target, tuned.share.kind, tuned.share.percent)
    store = Store(db_url)
    try:
        found = workloads_by_other_target(store, untuned, key.target_kind, tuned.share.kind,
                                          key.target_key)
    finally:
        store.close()
    here = isa_of(json.loads(str(tuned.target)))
    return [
        OtherTargetRecords(other, isa_of(json.loads(other)), count,
                           f"tuned for {isa_of(json.loads(other))}; this run is for {here}")
        for other, count in found.items()
    ]
