"""Seeds (schedules measured before a job's search: transfer, similar workloads,
siblings) are measured as MetaSchedule measures its own candidates. Real TVM: a tiny
matmul whose weight layout the schedule rewrites, built and measured on one core."""

from __future__ import annotations

from pathlib import Path

import pytest
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.meta_schedule.arg_info import ArgInfo

from schedules_db.ms_adapter import SliceDatabase
from tests.search.test_warm_start import CORES, SHARE, TARGET, _job, _task, _tools
from tunesvc.targets import ShareTarget
from tunesvc.tuning.registration import register_tasks
from workers.seeding import FAILED_RUN_SECS, measure_seeds
from workers.testing import matmul_module
from workers.tuner import run_job

pytestmark = [pytest.mark.cpu, pytest.mark.slow]  # measures for real


def test_a_seed_that_rewrote_its_weights_layout_runs_with_that_layout(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    task = _task("fused_matmul9", matmul_module(64, layout_free=True))
    register_tasks(url, "seed-model", "fp-seed", [task])
    tools = _tools(url)
    database = SliceDatabase(tools.store, ShareTarget.of(TARGET, SHARE).key)
    workload = database.commit_workload(task.mod)
    context = ms.TuneContext(mod=task.mod, target=TARGET, space_generator="post-order-apply",
                             task_name=task.name, num_threads=1)
    schedule = context.generate_design_space()[0]
    assert all(postproc.apply(schedule) for postproc in context.space_generator.postprocs)
    weight = ArgInfo.from_entry_func(schedule.mod, remove_preproc=True)[1]
    assert list(weight.shape) != [64, 64]  # the weight now comes in its rewritten layout
    assert measure_seeds([schedule], TARGET, database, workload, tools) == 1
    ((_, record),) = database.records_of(workload)
    assert [float(s) for s in record.run_secs] != FAILED_RUN_SECS  # it ran
    assert list(record.args_info[1].shape) == list(weight.shape)


def test_a_siblings_seed_replays_in_the_search_that_follows(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """A weight-rewriting sibling seed is measured, and the search after it (which starts
    from the slice's best records, the seed among them) replays it without error."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    first = _task("fused_matmul9", matmul_module(64, layout_free=True))
    second = _task("fused_matmul9_relu2", matmul_module(64, relu=True, layout_free=True))
    register_tasks(url, "seed-model", "fp-seed", [first, second])
    tools = _tools(url)
    for task in (first, second):
        result = run_job(_job(task, False, tmp_path / task.name, trials=8), CORES, "w", tools)
        assert result.ok, result.error
    log = Path(result.log_path).read_text() + capsys.readouterr().out
    assert "siblings: measured 2 schedules of ['fused_matmul9'] first" in log
    database = SliceDatabase(tools.store, ShareTarget.of(TARGET, SHARE).key)
    records = database.records_of(database.commit_workload(second.mod))
    assert len(records) == 8
    assert all([float(s) for s in r.run_secs] != FAILED_RUN_SECS for _, r in records[:2])
