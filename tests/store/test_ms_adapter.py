"""The SQL-backed MetaSchedule database passes the checks MetaSchedule's own databases pass
(round trip, has_workload, add entry, missing workload, sorting, reload, query), plus the
one thing TVM's databases cannot do: keep shares apart."""

from __future__ import annotations


import pytest
import tvm
from tvm.ir import IRModule
from tvm.s_tir import Schedule
from tvm.s_tir import meta_schedule as ms
from tvm.target import Target

from schedules_db import Store
from schedules_db.ms_adapter import SliceDatabase
from schedules_db.targetkey import slice_key, target_json
from workers.testing import matmul_module

TARGET = Target({"kind": "llvm", "num-cores": 2})


def _scheduled_trace(mod: IRModule) -> tvm.s_tir.Trace:
    sch = Schedule(mod)
    i, j, k = sch.get_loops(sch.get_sblock("matmul"))
    sch.split(i, factors=[None, 16])
    sch.split(k, factors=[None, 4])
    return sch.trace


def _record(db: SliceDatabase, mod: IRModule, run_secs: list[float]) -> ms.database.TuningRecord:
    workload = db.commit_workload(mod)
    args = ms.arg_info.ArgInfo.from_prim_func(func=mod["main"])
    return ms.database.TuningRecord(_scheduled_trace(mod), workload, run_secs, TARGET, args)


def _assert_same(a: ms.database.TuningRecord, b: ms.database.TuningRecord) -> None:
    assert str(a.trace) == str(b.trace)
    assert [float(x) for x in a.run_secs] == pytest.approx([float(x) for x in b.run_secs])
    # TVM itself reorders target attributes on a JSON round trip: compare them as dicts.
    assert target_json(a.target) == target_json(b.target)
    tvm.ir.assert_structural_equal(a.workload.mod, b.workload.mod)
    assert [str(x.as_json()) for x in a.args_info] == [str(x.as_json()) for x in b.args_info]


def _slice(url: str, percent: int = 50) -> SliceDatabase:
    return SliceDatabase(Store(url), slice_key(target_json(TARGET), "cpu", percent), worker="test")


def test_round_trip_keeps_every_field(db_url: str) -> None:
    db, mod = _slice(db_url), matmul_module(64)
    record = _record(db, mod, [1.5, 2.5, 1.8])
    db.commit_tuning_record(record)
    (stored,) = db.get_top_k(db.commit_workload(mod), 1)
    _assert_same(stored, record)


def test_has_workload_and_missing(db_url: str) -> None:
    db, mod, other = _slice(db_url), matmul_module(64), matmul_module(32)
    db.commit_tuning_record(_record(db, mod, [1.0]))
    assert len(db) == 1
    assert db.has_workload(mod)
    assert not db.has_workload(other)
    assert db.get_top_k(db.commit_workload(other), 3) == []


def test_top_k_sorts_by_mean_and_skips_failures(db_url: str) -> None:
    db, mod = _slice(db_url), matmul_module(64)
    all_secs = [[7.0, 8.0, 9.0], [1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [1.1, 1.2, 600.0], [1e10]]
    for secs in all_secs:
        db.commit_tuning_record(_record(db, mod, secs))
    best_two = db.get_top_k(db.commit_workload(mod), 2)
    assert [[float(x) for x in r.run_secs] for r in best_two] == [all_secs[1], all_secs[2]]
    assert len(db) == 5
    assert len(db.get_all_tuning_records()) == 5


def test_reload_from_a_fresh_store(db_url: str) -> None:
    db, mod = _slice(db_url), matmul_module(64)
    record = _record(db, mod, [3.0])
    db.commit_tuning_record(record)
    reopened = _slice(db_url)
    (stored,) = reopened.get_top_k(reopened.commit_workload(mod), 5)
    _assert_same(stored, record)
    (every,) = reopened.get_all_tuning_records()
    _assert_same(every, record)


def test_query_applies_the_best_schedule(db_url: str) -> None:
    db, mod = _slice(db_url), matmul_module(64)
    db.commit_tuning_record(_record(db, mod, [2.0]))
    queried = db.query_ir_module(mod, TARGET, "main")
    expected = Schedule(mod)
    _scheduled_trace(mod).apply_to_schedule(expected, remove_postproc=False)
    tvm.ir.assert_structural_equal(queried, expected.mod)
    assert db.query_schedule(mod, TARGET, "main") is not None


def test_shares_are_kept_apart(db_url: str) -> None:
    at_50, at_100, mod = _slice(db_url, 50), _slice(db_url, 100), matmul_module(64)
    at_50.commit_tuning_record(_record(at_50, mod, [5.0]))
    at_100.commit_tuning_record(_record(at_100, mod, [1.0]))
    (best_50,) = at_50.get_top_k(at_50.commit_workload(mod), 5)
    assert [float(x) for x in best_50.run_secs] == [5.0]
    assert len(at_50) == 1 and len(at_100) == 1


def test_a_refusing_guard_stops_the_commit(db_url: str) -> None:
    def refuse() -> None:
        raise RuntimeError("MPS server faulted")

    store = Store(db_url)
    guarded = SliceDatabase(store, slice_key(target_json(TARGET), "gpu", 25), before_commit=refuse)
    mod = matmul_module(64)
    with pytest.raises(RuntimeError, match="faulted"):
        guarded.commit_tuning_record(_record(guarded, mod, [1.0]))
    assert len(guarded) == 0
