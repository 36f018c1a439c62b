"""Learning from other workloads' records (`--warm-model`): a task's cost model trains on
a stored workload's records before its search, and a workload never tuned on the target
first measures the best schedules of a stored workload of the same operator, refitted to
its shapes. Real TVM: two tiny matmuls, built and measured on one core."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from tvm.ir import IRModule
from tvm.target import Target

from schedules_db import Store
from schedules_db.ms_adapter import SliceDatabase, stored_workload, to_tuning_record
from tunesvc.targets import ShareTarget
from tunesvc.tuning.registration import register_tasks
from workers.jobs import SearchConfig, TaskSpec, TuneJob
from workers.search import measured_modules, module_hash
from workers.shares import Share
from workers.similar import adapted, operator_kind, refit_tile
from workers.testing import matmul_module
from workers.tuner import run_job
from workers.warm import WorkerTools, start_tools
from schedules_db.ms_adapter import workload_shash

pytestmark = [pytest.mark.cpu, pytest.mark.slow]  # tunes for real

SHARE = Share("cpu", 50)
TARGET = Target({"kind": "llvm", "num-cores": 1})
CORES = tuple(sorted(os.sched_getaffinity(0)))[:1]


def _task(name: str, mod: IRModule) -> TaskSpec:
    return TaskSpec(name, workload_shash(mod), 1, mod)


def _job(task: TaskSpec, warm: bool, folder: Path, trials: int = 4) -> TuneJob:
    at = ShareTarget.of(TARGET, SHARE)
    return TuneJob(f"{task.name}-{warm}", task, at.share, at.json, at.key,
                   SearchConfig(trials=trials, trials_per_round=4, population=32, warm=warm),
                   str(folder))


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, TaskSpec]:
    """A database holding 12 measured schedules of a 32x32 matmul (a model's task)."""
    folder = tmp_path_factory.mktemp("warm")
    url = f"sqlite:///{folder / 'db.sqlite'}"
    task = _task("fused_matmul3", matmul_module(32))
    register_tasks(url, "first-model", "fp-first", [task])
    result = run_job(_job(task, False, folder / "first", trials=12), CORES, "first",
                     _tools(url))
    assert result.ok and result.trials_measured == 12, result.error
    return url, task


def _tune_second(url: str, warm: bool, folder: Path,
                 printed: pytest.CaptureFixture[str]) -> tuple[WorkerTools, TaskSpec, str]:
    """The second workload tuned by a new worker; its job log (what the job printed goes
    to pytest's capture, not to the file, under pytest)."""
    task = _task("fused_matmul7", matmul_module(48))
    register_tasks(url, f"second-{warm}", f"fp-second-{warm}", [task])
    tools = _tools(url)
    result = run_job(_job(task, warm, folder), CORES, "second", tools)
    assert result.ok and result.trials_measured == 4, result.error
    return tools, task, Path(result.log_path).read_text() + printed.readouterr().out


def _tools(url: str) -> WorkerTools:
    """A new worker (its cost model knows nothing yet) that measures for real; the share
    proof, tested elsewhere, is taken as given."""
    tools = start_tools(1, url, SHARE)
    tools.proven_for.add(ShareTarget.of(TARGET, SHARE).json)
    return tools


def _copy(url: str, folder: Path) -> str:
    """A copy of the database for one test (SQLite's backup: the file alone may miss what
    its write-ahead log holds)."""
    copy = folder / "copy.sqlite"
    with sqlite3.connect(url.removeprefix("sqlite:///")) as source, \
            sqlite3.connect(copy) as target:
        source.backup(target)
    return f"sqlite:///{copy}"


def test_a_warm_cost_model_trains_on_another_workloads_records_first(
        stored: tuple[str, TaskSpec], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    url, first = stored
    tools, second, log = _tune_second(_copy(url, tmp_path), True, tmp_path / "job", capsys)
    assert "warm model: trained on 12 records of 1 other workloads" in log
    # the cost model holds the stored workload's records as a group of their own
    assert len(tools.cost_model.data) == 2
    assert sum(len(g.costs) for g in tools.cost_model.data.values()) >= 12 + 4


def test_a_cold_cost_model_learns_only_from_its_own_trials(
        stored: tuple[str, TaskSpec], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    url, _ = stored
    tools, _, log = _tune_second(_copy(url, tmp_path), False, tmp_path / "job", capsys)
    assert "warm model:" not in log and "similar:" not in log
    assert len(tools.cost_model.data) == 1


def test_a_new_workload_first_tries_a_similar_workloads_best_schedules(
        stored: tuple[str, TaskSpec], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    url, first = stored
    copy = _copy(url, tmp_path)
    _, second, log = _tune_second(copy, True, tmp_path / "job", capsys)
    assert "similar: measured 2 schedules of ['fused_matmul3'] first" in log
    with Store(copy) as store:
        key = ShareTarget.of(TARGET, SHARE).key
        theirs = stored_workload(store, first.shash)
        best = [to_tuning_record(r, theirs) for r in store.top_records(key, first.shash, 2)]
        expected = {module_hash(adapted(r.trace, second.mod).mod) for r in best}
        records = SliceDatabase(store, key).records_of(stored_workload(store, second.shash))
    assert len(expected) == 2
    assert measured_modules(r for _, r in records[:2]) == expected  # measured first


def test_tile_sizes_are_refitted_to_the_new_extent() -> None:
    assert refit_tile([2, 4, 8], 96, 16) == [3, 4, 8]
    assert refit_tile([4, 1, 16], 100, 8) == [20, 1, 5]  # the innermost kept under its cap
    assert operator_kind("fused_conv2d3_add2_relu1") == "conv2d_add_relu"
