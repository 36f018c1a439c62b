"""A slice's best record is checked against TVM's default schedule before it counts.

The fixture holds two real schedules of zoo:convnet's Winograd F(4x4) kernel, found by
tuning at 50% with 8 trials a task: one whose weight layout rewrite is not one-to-one (it
computes wrong outputs) and one that is right. Both are replayed on the workload, built and
run for real; the store is real SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schedules_db import NewRecord, SliceKey, Store, best_record
from schedules_db.ms_adapter import workload_json
from tunesvc.models.sources import load_model
from tunesvc.pipeline.importer import extract_task_set, to_relax
from tunesvc.targets import TargetSpec
from workers.shares import Share
from workers.verify import Reference, run, scheduled, verify_best

FIXTURE = json.loads((Path(__file__).parents[1] / "fixtures" /
                      "winograd4_layout_map.json").read_text())


@pytest.fixture(scope="module")
def kernel() -> tuple[object, object]:
    """The Winograd kernel's task module and the 50% target it was tuned for."""
    target = TargetSpec("cpu").for_share(Share("cpu", FIXTURE["share"]))
    tasks = extract_task_set(to_relax(load_model("zoo:convnet")), target).tasks
    task = next(t for t in tasks if t.name == FIXTURE["task"])
    assert task.shash == FIXTURE["workload_shash"]  # the schedules were tuned for this kernel
    return task.mod, target


def _record(trace: list) -> object:
    from schedules_db.records import StoredRecord

    return StoredRecord(0, FIXTURE["workload_shash"], "{}", 50, json.dumps(trace), (1e-5,),
                        "[]", "test", None)  # type: ignore[arg-type]


def test_the_wrong_schedule_disagrees_and_the_right_one_agrees(kernel) -> None:
    mod, target = kernel
    reference = Reference.of(mod, target)
    error, allowed = reference.differs(run(scheduled(mod, _record(FIXTURE["wrong"])), target,
                                           reference.inputs))
    assert error > 100 * allowed
    assert reference.differs(run(scheduled(mod, _record(FIXTURE["right"])), target,
                                 reference.inputs)) is None


def test_verify_marks_the_wrong_fastest_failed_and_stops_at_the_right_one(
        kernel, db_url: str) -> None:
    mod, target = kernel
    key = SliceKey('{"kind": "llvm"}', "llvm", "cpu", 50)
    shash = FIXTURE["workload_shash"]
    with Store(db_url) as store:
        store.ensure_workload(shash, workload_json(mod))

        def add(trace: list, seconds: float) -> int:
            return store.add_record(key, NewRecord(shash, "{}", json.dumps(trace), (seconds,),
                                                   "[]", "test"))

        wrong = add(FIXTURE["wrong"], 1e-5)
        right = add(FIXTURE["right"], 2e-5)
        unchecked = add(FIXTURE["wrong"], 3e-5)  # slower than a checked one: left alone
        assert best_record(store, key, shash).record.id == wrong

        found = verify_best(store, key, shash, mod, target)
        assert [d.record_id for d in found] == [wrong] and found[0].max_abs_error > 1.0
        assert best_record(store, key, shash).record.id == right
        assert [r.id for r in store.top_records(key, shash, None)] == [right, unchecked]
        assert verify_best(store, key, shash, mod, target) == []  # the best is a right one


@pytest.mark.slow
def test_a_tuning_job_marks_a_wrong_best_record_failed(kernel, tmp_path: Path,
                                                       tunesvc_env: dict[str, str]) -> None:
    """A wrong schedule planted as the slice's fastest record, as MetaSchedule would commit
    it: the next tuning job finds it out, says so, and the slice's best is a checked one."""
    from tests.conftest import tunesvc

    at = TargetSpec("cpu").at(Share("cpu", FIXTURE["share"]))
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    (planted,) = _plant(kernel[0], at, url, [(FIXTURE["wrong"], 1e-9)])

    done = tunesvc("tune", "zoo:convnet", "--shares", "50", "--trials-per-task", "2",
                   "--db", url, "--no-compare", env=tunesvc_env)
    assert done.returncode == 0, done.stdout + done.stderr
    line = next(line for line in done.stdout.splitlines() if FIXTURE["task"] + " " in line)
    assert "1 schedule(s) computed wrong outputs, marked failed" in line
    with Store(url) as store:
        best = best_record(store, at.key, FIXTURE["workload_shash"]).record
        assert best is not None and best.id != planted
        marked = next(r for r in store.all_records(at.key, FIXTURE["workload_shash"])
                      if r.id == planted)
        assert marked.mean_run_sec is None  # counted as a failed candidate


def test_db_check_marks_a_stored_wrong_record_failed(kernel, tmp_path: Path,
                                                     tunesvc_env: dict[str, str]) -> None:
    """Records stored before the check: `tunesvc db check` finds the wrong one without
    tuning, and the workload's best is then the right one."""
    from tests.conftest import tunesvc

    at = TargetSpec("cpu").at(Share("cpu", FIXTURE["share"]))
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    planted = _plant(kernel[0], at, url, [(FIXTURE["wrong"], 1e-9), (FIXTURE["right"], 1e-6)])
    done = tunesvc("db", "check", "--share", "50", "--db", url, env=tunesvc_env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"record {planted[0]} computes wrong outputs" in done.stdout
    assert "Checked the best records of 1 workloads (cpu:50%): 1 computed wrong" in done.stdout
    with Store(url) as store:
        assert best_record(store, at.key, FIXTURE["workload_shash"]).record.id == planted[1]


def _plant(mod: object, at: object, url: str, traces: list[tuple[list, float]]) -> list[int]:
    """Each trace committed to the slice as MetaSchedule commits a measured candidate."""
    from tvm.s_tir import Schedule, Trace
    from tvm.s_tir.meta_schedule.arg_info import ArgInfo
    from tvm.s_tir.meta_schedule.database import TuningRecord

    from schedules_db.ms_adapter import SliceDatabase

    with Store(url) as store:
        database = SliceDatabase(store, at.key)
        workload = database.commit_workload(mod)
        for trace, seconds in traces:
            schedule = Schedule(mod)
            Trace.apply_json_to_schedule(trace, schedule)
            database.commit_tuning_record(TuningRecord(
                schedule.trace, workload, [seconds], at.target,
                ArgInfo.from_entry_func(schedule.mod, remove_preproc=True)))
        return [r.id for r in store.all_records(at.key, FIXTURE["workload_shash"])]
