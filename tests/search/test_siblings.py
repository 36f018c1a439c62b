"""Siblings: a workload of the same operator on the same shapes as a stored one, fused with
other elementwise operators, first measures the stored one's best schedules that beat its
own, once (their sampling decisions on its own design space). Real TVM: a tiny matmul
tuned, then the same matmul with a ReLU."""

from __future__ import annotations

from pathlib import Path

import pytest
from tvm.s_tir import meta_schedule as ms

from schedules_db import Store
from schedules_db.ms_adapter import SliceDatabase, stored_workload, to_tuning_record
from tests.search.test_warm_start import SHARE, TARGET, CORES, _copy, _job, _task, _tools
from tests.search.test_warm_start import stored  # noqa: F401  (the fixture)
from tunesvc.targets import ShareTarget
from tunesvc.tuning.registration import register_tasks
from workers.jobs import TaskSpec
from workers.search import measured_modules, module_hash
from workers.siblings import kin_of, main_operator, transplanted
from workers.testing import matmul_module
from workers.tuner import run_job

pytestmark = [pytest.mark.cpu, pytest.mark.slow]  # tunes for real


def test_main_operator_drops_numbering_and_what_follows_the_main_operator() -> None:
    assert main_operator("fused_winograd4_conv2d1_add1_add2_relu11") == "winograd4_conv2d"
    assert main_operator("fused_conv2d_add_relu1") == "conv2d"
    assert main_operator("max_pool2d1") == "max_pool2d"
    assert main_operator("fused_matmul5_relu2") == main_operator("fused_matmul3") == "matmul"


def test_kin_is_the_main_operator_on_the_same_shapes() -> None:
    with_relu = kin_of("fused_matmul5_relu2", matmul_module(32, relu=True))
    assert with_relu == kin_of("fused_matmul3", matmul_module(32))
    assert with_relu != kin_of("fused_matmul3", matmul_module(64))


def _tune(url: str, task: TaskSpec, trials: int, folder: Path,
          printed: pytest.CaptureFixture[str]) -> str:
    result = run_job(_job(task, False, folder, trials=trials), CORES, folder.name, _tools(url))
    assert result.ok, result.error
    return Path(result.log_path).read_text() + printed.readouterr().out


def test_a_sibling_first_measures_the_stored_best_schedules_once(
        stored: tuple[str, TaskSpec], tmp_path: Path,  # noqa: F811
        capsys: pytest.CaptureFixture[str]) -> None:
    url, first = stored
    copy = _copy(url, tmp_path)
    task = _task("fused_matmul5_relu2", matmul_module(32, relu=True))
    register_tasks(copy, "relu-model", "fp-relu", [task])
    log = _tune(copy, task, 4, tmp_path / "one", capsys)
    assert "siblings: measured 2 schedules of ['fused_matmul3'] first" in log
    with Store(copy) as store:
        key = ShareTarget.of(TARGET, SHARE).key
        theirs = stored_workload(store, first.shash)
        best = [to_tuning_record(r, theirs) for r in store.top_records(key, first.shash, 2)]
        context = ms.TuneContext(mod=task.mod, target=TARGET, space_generator="post-order-apply",
                                 task_name=task.name, num_threads=1)
        spaces, postprocs = context.generate_design_space(), context.space_generator.postprocs
        expected = {module_hash(transplanted(r.trace, spaces, postprocs, task.mod).mod)
                    for r in best}
        records = SliceDatabase(store, key).records_of(stored_workload(store, task.shash))
    assert len(expected) == 2
    assert measured_modules(r for _, r in records[:2]) == expected  # measured first
    # the next job of the same slice does not measure them again
    assert "siblings:" not in _tune(copy, task, 8, tmp_path / "two", capsys)
