"""MetaSchedule's view of the store: a `PyDatabase` that sees one (target, share) slice.

MetaSchedule reads the best known candidates of a workload and writes every measured
candidate through this adapter, so records land in the store tagged with the share they
were measured at, as they are measured. It never sees records of another share or target.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from typing import Any

import tvm
import tvm_ffi
from tvm.ir import IRModule
from tvm.ir.utils import derived_object
from tvm.s_tir import Schedule, Trace
from tvm.s_tir.meta_schedule.arg_info import ArgInfo
from tvm.s_tir.meta_schedule.database import PyDatabase, TuningRecord, Workload
from tvm.s_tir.meta_schedule.search_strategy import MeasureCandidate
from tvm.s_tir.meta_schedule import _ffi_api as database_api
from tvm.tirx import FloatImm, IndexMap, IntImm

from schedules_db.records import NewRecord, SliceKey, StoredRecord
from schedules_db.store import Store


def workload_shash(mod: IRModule) -> str:
    """MetaSchedule's structural hash of a workload, as stored (same as `Workload.as_json()[0]`)."""
    return str(tvm_ffi.structural_hash(mod))


def workload_json(mod: IRModule) -> str:
    """The workload as stored: MetaSchedule's JSON of the module."""
    return json.dumps(Workload(mod).as_json()[1])


def record_as_json(record: TuningRecord) -> list[Any]:
    """`TuningRecord.as_json()`, also for traces that change a buffer's layout: their
    index maps are written as TVM JSON strings, which `TuningRecord.from_json` reads back."""
    return _plain(database_api.TuningRecordAsJSON(record))


def _plain(obj: Any) -> Any:
    if isinstance(obj, IndexMap):
        return tvm.ir.save_json(obj)
    if isinstance(obj, tvm_ffi.Array | list):
        return [_plain(item) for item in obj]
    if isinstance(obj, tvm_ffi.Map):
        return {_plain(key): _plain(value) for key, value in obj.items()}
    if isinstance(obj, IntImm | FloatImm):
        return obj.value
    if obj is None or isinstance(obj, int | float):
        return obj
    if isinstance(obj, str):
        return str(obj)
    raise TypeError(f"cannot store a {type(obj).__name__} in a tuning record")


@derived_object
class SliceDatabase(PyDatabase):
    """A MetaSchedule database over `store`, restricted to the slice `key`."""

    def __init__(self, store: Store, key: SliceKey, worker: str = "",
                 before_commit: Callable[[], None] | None = None) -> None:
        """`before_commit` runs before each record is stored and raises to refuse it
        (a GPU worker refuses once the MPS server it measures through has faulted)."""
        super().__init__()
        self.store = store
        self.key = key
        self.worker = worker
        self.before_commit = before_commit
        self._workloads: dict[str, Workload] = {}

    def has_workload(self, mod: IRModule) -> bool:
        return self.store.has_workload(workload_shash(mod))

    def commit_workload(self, mod: IRModule) -> Workload:
        shash = workload_shash(mod)
        if shash not in self._workloads:
            workload = Workload(mod)
            self.store.ensure_workload(shash, json.dumps(workload.as_json()[1]))
            self._workloads[shash] = workload
        return self._workloads[shash]

    def commit_tuning_record(self, record: TuningRecord) -> None:
        if self.before_commit is not None:
            self.before_commit()
        trace, run_secs, target, args_info = record_as_json(record)
        shash = workload_shash(record.workload.mod)
        self.commit_workload(record.workload.mod)
        new = NewRecord(
            workload_shash=shash,
            target_json=json.dumps(target),
            trace_json=json.dumps(trace),
            run_secs=tuple(float(sec) for sec in (run_secs or [])),
            args_info_json=json.dumps(args_info),
            worker=self.worker,
        )
        self.store.add_record(self.key, new)

    def get_top_k(self, workload: Workload, top_k: int) -> list[TuningRecord]:
        shash = workload_shash(workload.mod)
        stored = self.store.top_records(self.key, shash, limit=top_k)
        return [to_tuning_record(row, workload) for row in stored]

    def get_all_tuning_records(self) -> list[TuningRecord]:
        return [
            to_tuning_record(row, self._workload_of(row.workload_shash))
            for row in self.store.all_records(self.key)
        ]

    def records_of(self, workload: Workload) -> list[tuple[int, TuningRecord]]:
        """Every record of one workload in the slice with its id, failed ones included,
        oldest first."""
        rows = self.store.all_records(self.key, workload_shash(workload.mod))
        return [(row.id, to_tuning_record(row, workload)) for row in rows]

    def __len__(self) -> int:
        return self.store.count_records(self.key)

    def _workload_of(self, shash: str) -> Workload:
        if shash not in self._workloads:
            self._workloads[shash] = stored_workload(self.store, shash)
        return self._workloads[shash]


def stored_workload(store: Store, shash: str) -> Workload:
    """MetaSchedule's workload of a stored hash (its module rebuilt from the store)."""
    mod_json = store.workload_mod_json(shash)
    if mod_json is None:
        raise KeyError(f"workload {shash} is not in the store")
    return Workload.from_json([shash, json.loads(mod_json)])


def to_tuning_record(row: StoredRecord, workload: Workload) -> TuningRecord:
    """Rebuild MetaSchedule's record from its stored JSON parts."""
    parts = [
        json.loads(row.trace_json),
        list(row.run_secs),
        json.loads(row.target_json),
        json.loads(row.args_info_json),
    ]
    return TuningRecord.from_json(parts, workload)


def to_measure_candidate(row: StoredRecord, workload: Workload) -> MeasureCandidate:
    """The stored schedule as a candidate a cost model can learn from: its trace replayed
    once on the workload (`to_tuning_record(...).as_measure_candidate()` replays it twice)."""
    schedule = Schedule(workload.mod)
    Trace.apply_json_to_schedule(json.loads(row.trace_json), schedule)
    return MeasureCandidate(schedule, [ArgInfo.from_json(a)
                                       for a in json.loads(row.args_info_json)])
