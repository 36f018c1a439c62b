"""Search logic without hardware: candidates come from a fake search or the real
evolutionary search, builds and measurements are replayed (`workers.testing`), and the
store is real. What is tested is what the search and the resume logic decide."""

from __future__ import annotations

import json
from pathlib import Path

from tvm.target import Target

from schedules_db import Store, slice_progress
from tunesvc.targets import ShareTarget
from tunesvc.pipeline.importer import extract_tasks, to_relax
from tunesvc.models.sources import load_model
from workers.jobs import SearchConfig, TuneJob
from schedules_db.ms_adapter import SliceDatabase
from workers.search import (
    MAX_STALE_ROUNDS,
    ModuleHashes,
    SkipMeasuredSearch,
    measured_modules,
    module_hash,
)
from workers.shares import Share
from workers.testing import (
    FakeSearch,
    ReplayBuilder,
    ReplayRunner,
    matmul_module,
    split_candidates,
)
from workers.tuner import run_job
from workers.warm import WorkerTools


def _hashes(candidates: list) -> list[int]:
    return [module_hash(c.sch.mod) for c in candidates]


def test_skip_measured_search_hands_out_only_unmeasured_candidates() -> None:
    candidates = split_candidates(matmul_module(64), "matmul", 12)
    assert len(set(_hashes(candidates))) == 12
    search = SkipMeasuredSearch(FakeSearch([candidates[0:4], candidates[2:8], candidates[8:12]]),
                                set(_hashes(candidates[0:4])))
    # the first batch is all measured: skipped within the same call
    assert _hashes(search.generate_measure_candidates()) == _hashes(candidates[4:8])
    assert _hashes(search.generate_measure_candidates()) == _hashes(candidates[8:12])
    assert search.generate_measure_candidates() is None
    assert search.skipped == 6


def test_skip_measured_search_gives_up_after_stale_rounds() -> None:
    known = split_candidates(matmul_module(64), "matmul", 2)
    stale = [known] * MAX_STALE_ROUNDS + [split_candidates(matmul_module(64), "matmul", 3)]
    search = SkipMeasuredSearch(FakeSearch(stale), set(_hashes(known)))
    assert search.generate_measure_candidates() is None  # only known ones, round after round
    assert search.skipped == 2 * MAX_STALE_ROUNDS


def test_candidates_measured_in_one_batch_are_not_handed_out_again() -> None:
    batch = split_candidates(matmul_module(64), "matmul", 4)
    search = SkipMeasuredSearch(FakeSearch([batch, batch]), set())
    assert len(search.generate_measure_candidates()) == 4
    assert search.generate_measure_candidates() is None


def test_the_search_stops_at_its_budget_after_a_batch_of_known_candidates() -> None:
    # The inner search clamps its last batch to the budget once: asked again after a batch
    # of known candidates, it hands out a full batch. The wrapper keeps to the budget.
    known = split_candidates(matmul_module(64), "matmul", 2)
    fresh = split_candidates(matmul_module(32), "matmul", 8)
    search = SkipMeasuredSearch(FakeSearch([fresh[0:4], known, fresh[4:8]]), set(_hashes(known)))
    search.pre_tuning(6, 4, [])
    assert len(search.generate_measure_candidates()) == 4
    assert _hashes(search.generate_measure_candidates()) == _hashes(fresh[4:6])
    assert search.generate_measure_candidates() is None


def test_the_inner_search_is_asked_for_more_so_one_round_is_enough() -> None:
    # MetaSchedule puts the slice's best records in its population and ranks them first;
    # asked for `extra` more, the round still holds a full round of fresh candidates.
    known = split_candidates(matmul_module(64), "matmul", 3)
    fresh = split_candidates(matmul_module(32), "matmul", 6)
    inner = FakeSearch([known + fresh, fresh])
    search = SkipMeasuredSearch(inner, set(_hashes(known)), extra=3)
    search.pre_tuning(8, 4, [])
    assert inner.asked == (8 + 3, 4 + 3)
    assert _hashes(search.generate_measure_candidates()) == _hashes(fresh[0:4])  # best first
    assert inner.given == 1  # no second round for the known ones


def _replay_tools(db_url: str, target_text: str) -> WorkerTools:
    tools = WorkerTools(builder=ReplayBuilder(), runner=ReplayRunner(), cores=1, db_url=db_url)
    tools.proven_for.add(target_text)  # nothing is measured: there is no share to prove
    return tools


def test_a_resumed_job_measures_only_what_is_missing_and_nothing_twice(tmp_path: Path) -> None:
    target = Target({"kind": "llvm", "num-cores": 1})
    task = next(t for t in extract_tasks(to_relax(load_model("zoo:mlp")), target)
                if "matmul" in t.name or "dense" in t.name)
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    at = ShareTarget.of(target, Share("cpu", 50))
    tools = _replay_tools(url, at.json)

    def job(trials: int, number: int) -> TuneJob:
        return TuneJob(f"replay-{number}", task, at.share, at.json, at.key,
                       SearchConfig(trials=trials, trials_per_round=4, population=32),
                       str(tmp_path / f"job{number}"))

    first = run_job(job(8, 1), (0,), "replay", tools)
    assert first.ok, first.error
    assert first.trials_measured == 8 and first.slice_trials == 8
    again = run_job(job(8, 2), (0,), "replay", tools)  # the same budget: nothing to do
    assert again.trials_measured == 0
    more = run_job(job(16, 3), (0,), "replay", tools)
    assert more.trials_measured == 8 and more.slice_trials == 16
    progress = slice_progress(Store(url), job(16, 3).slice_key, task.shash)
    assert (progress.records, progress.successful) == (16, 16)
    assert progress.completion is not None and progress.completion.trials_budget == 16
    # 16 candidates and TVM's default schedule (its baseline, measured once per slice):
    # nothing was built, so nothing measured, twice
    built = tools.builder.built
    assert len(built) == 17 and len(set(built)) == 17
    stored = Store(url).all_records(job(16, 3).slice_key, task.shash)
    assert len({json.dumps(json.loads(r.trace_json)) for r in stored}) == 16


def test_module_hashes_agree_with_replayed_records_and_replay_each_trace_once(
        tmp_path: Path) -> None:
    target = Target({"kind": "llvm", "num-cores": 1})
    task = next(t for t in extract_tasks(to_relax(load_model("zoo:mlp")), target)
                if "matmul" in t.name or "dense" in t.name)
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    at = ShareTarget.of(target, Share("cpu", 50))
    job = TuneJob("replay-1", task, at.share, at.json, at.key,
                  SearchConfig(trials=8, trials_per_round=4, population=32),
                  str(tmp_path / "job1"))
    assert run_job(job, (0,), "replay", _replay_tools(url, at.json)).ok
    store = Store(url)
    rows = store.all_records(at.key, task.shash)
    database = SliceDatabase(store, at.key)
    records = [r for _, r in database.records_of(database.commit_workload(task.mod))]
    hashes = ModuleHashes()
    assert len(rows) == 8
    assert hashes.of(task.mod, rows) == measured_modules(records)
    # a second time nothing is replayed: the workload's module is not even read
    assert hashes.of(None, rows) == measured_modules(records)  # type: ignore[arg-type]
