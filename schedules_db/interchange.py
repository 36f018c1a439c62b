"""Records to and from MetaSchedule's JSON database, so they move between tunesvc and
stock TVM (`tune_relax`, `compile_relax`, `JSONDatabase`).

That format is two files in a folder: `database_workload.json` and
`database_tuning_record.json`. It has no notion of a share: an export holds one share's
records, and an import says at which share the records were tuned.
"""

from __future__ import annotations

import json
from pathlib import Path

from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.meta_schedule.database import Workload

from schedules_db.ms_adapter import record_as_json, to_tuning_record, workload_json, \
    workload_shash
from schedules_db.records import NewRecord, SliceKey
from schedules_db.store import Store
from schedules_db.targetkey import slice_key

WORKLOAD_FILE = "database_workload.json"
RECORD_FILE = "database_tuning_record.json"


def json_database(folder: Path, must_exist: bool) -> ms.database.JSONDatabase:
    return ms.database.JSONDatabase(path_workload=str(folder / WORKLOAD_FILE),
                                    path_tuning_record=str(folder / RECORD_FILE),
                                    allow_missing=not must_exist)


def export_slice(store: Store, key: SliceKey, shashes: list[str], folder: Path,
                 top: int | None) -> int:
    """Write the best `top` (all if None) successful records of each workload in `shashes`
    at slice `key` to a JSON database in `folder`; returns how many were written."""
    folder.mkdir(parents=True, exist_ok=True)
    database = json_database(folder, must_exist=False)
    written = 0
    for shash in shashes:
        records = store.top_records(key, shash, limit=top)
        mod_json = store.workload_mod_json(shash)
        if not records or mod_json is None:
            continue
        workload = database.commit_workload(Workload.from_json([shash, json.loads(mod_json)]).mod)
        for record in records:
            database.commit_tuning_record(to_tuning_record(record, workload))
            written += 1
    return written


def import_folder(store: Store, folder: Path, share_kind: str, share_percent: int) -> int:
    """Add every record of the JSON database in `folder` as tuned at this share (each under
    its own target); returns how many were added."""
    added = 0
    for record in json_database(folder, must_exist=True).get_all_tuning_records():
        mod = record.workload.mod
        shash = workload_shash(mod)
        store.ensure_workload(shash, workload_json(mod))
        trace, run_secs, target, args_info = record_as_json(record)
        key = slice_key(json.dumps(target), share_kind, share_percent)
        store.add_record(key, NewRecord(
            workload_shash=shash, target_json=json.dumps(target), trace_json=json.dumps(trace),
            run_secs=tuple(float(s) for s in (run_secs or [])),
            args_info_json=json.dumps(args_info), worker=f"import:{folder.name}"))
        added += 1
    return added
