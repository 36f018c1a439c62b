"""A 1x1 convolution and the depthwise one reading it, as one kernel: offered as a task
beside the two direct ones at stride 2, counted in place of both by the estimate and the
budget, chosen by measurement. The last test tunes zoo:invres for real, then removes one
form's records with the store's own delete and checks that the compiled model follows
what is left."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import onnx
import tvm.s_tir.meta_schedule as ms

import pytest

from schedules_db import Store
from schedules_db.lookup import best_record
from tests.conftest import tunesvc
from tunesvc.evaluation.reference import compare, reference_outputs
from tunesvc.models.inputs import sample_inputs
from tunesvc.models.sources import load_model
from tunesvc.models.zoo import INPUT_NAME, GraphBuilder
from tunesvc.pipeline.compiler import compile_with_database
from tunesvc.pipeline.conv_algorithms import DIRECT, FUSED, ConvPlan, ConvSite, choose_plan
from tunesvc.pipeline.importer import extract_task_set, to_relax
from tunesvc.runtime.tuned import load
from tunesvc.runtime.vm import VmModel
from tunesvc.targets import TargetSpec
from tunesvc.tuning.budget import BudgetAllocator, TaskProgress
from tunesvc.tuning.estimate import Part, estimated_latency
from workers.shares import Share

PAIR = ConvSite(0, "dw", {FUSED: "one"}, also="pw")
SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def test_a_pair_runs_as_one_kernel_only_when_it_beats_the_two() -> None:
    assert choose_plan([], {"pw": 5e-6, "dw": 3e-6, "one": 7e-6}.get, [PAIR]).pairs == (FUSED,)
    # faster than the depthwise kernel alone is not enough: the sum of both counts
    assert choose_plan([], {"pw": 5e-6, "dw": 3e-6, "one": 9e-6}.get, [PAIR]).pairs == (DIRECT,)
    assert choose_plan([], {"pw": 5e-6, "dw": 3e-6}.get, [PAIR]).pairs == (DIRECT,)
    assert ConvPlan(pairs=(FUSED, DIRECT, FUSED)).describe() == "fused pairs x2"


def test_the_estimate_counts_one_kernel_in_place_of_the_two() -> None:
    def model(fused_sec: float) -> float | None:
        return estimated_latency([Part("pw", 1, 5e-6, "pw"), Part("dw", 1, 3e-6, "dw"),
                                  Part("dw", 1, fused_sec, "one", also="pw")])

    assert model(7e-6) == pytest.approx(7e-6)
    assert model(9e-6) == pytest.approx(8e-6)


def _budget_after_three_chunks(fused_sec: float) -> BudgetAllocator:
    history = [(1.0, 16)] * 3
    tasks = {"pw": TaskProgress("pw", 1, trials=48, best_sec=5e-3, history=history,
                                exhausted=True),
             "dw": TaskProgress("dw", 1, trials=48, best_sec=3e-3, history=history,
                                exhausted=True),
             "one": TaskProgress("one", 1, group="dw", also="pw", trials=48,
                                 best_sec=fused_sec, history=history)}
    return BudgetAllocator(tasks, 1000, 1000, 16)


def test_the_budget_judges_one_kernel_against_what_it_replaces() -> None:
    # 7 ms against the depthwise kernel's 3 ms alone would look 2.3x behind; it spares
    # the 5 ms 1x1 kernel, so it is ahead and keeps getting trials
    assert _budget_after_three_chunks(7e-3).next_chunk() == ("one", 64)
    assert _budget_after_three_chunks(12e-3).next_chunk() is None  # 7 ms net: 2.3x behind


def _target() -> object:
    return TargetSpec("cpu").for_share(Share("cpu", 50))


def test_a_stride_2_pair_gets_one_kernel_as_a_rival_task() -> None:
    task_set = extract_task_set(to_relax(load_model("zoo:invres")), _target())
    (pair,) = task_set.pairs
    by_shash = {t.shash: t for t in task_set.tasks}
    fused = by_shash[pair.variants[FUSED]]
    assert (fused.competes_with, fused.also) == (pair.direct, pair.also)
    assert "pointwise_depthwise" in fused.name and "conv2d" in by_shash[pair.direct].name
    assert len(task_set.tasks) == 6 and task_set.sites == []


def _stride_1_pair(tmp_path: Path) -> str:
    g = GraphBuilder(seed=9)
    y = g.relu6(g.conv(INPUT_NAME, 8, 24, 1))
    y = g.relu6(g.conv(y, 24, 24, 3, 1, groups=24))
    path = tmp_path / "stride1.onnx"
    onnx.save(g.model("pair", (1, 8, 10, 10), y, (1, 24, 10, 10)), path)
    return str(path)


def test_a_stride_1_pair_stays_two_kernels(tmp_path: Path) -> None:
    """One kernel lost at stride 1 where it was measured (docs/benchmarks.md)."""
    task_set = extract_task_set(to_relax(load_model(_stride_1_pair(tmp_path))), _target())
    assert task_set.pairs == [] and not any(t.competes_with for t in task_set.tasks)


def test_one_kernel_computes_what_onnxruntime_does(tmp_path: Path) -> None:
    """Default schedules (no database): the fused form alone, against onnxruntime."""
    model = load_model("zoo:invres", {"input": (1, 8, 15, 15)})
    executable = compile_with_database(to_relax(model), _target(),
                                       ms.database.MemoryDatabase(), ConvPlan(pairs_rest=FUSED))
    called = [line.split()[1] for line in executable.as_text().splitlines()
              if line.strip().startswith("call")]
    assert sum("pointwise_depthwise" in name for name in called) == 1
    assert sum("conv2d" in name for name in called) == 1  # the projection only
    library = tmp_path / "model.so"
    executable.export_library(str(library))
    inputs = sample_inputs(model)
    agreement = compare(VmModel(library, "cpu", 1)(*inputs), reference_outputs(model, inputs))
    assert agreement.ok, (agreement.max_abs_error, agreement.tolerance)


@pytest.mark.slow
def test_both_forms_are_tuned_and_the_faster_is_compiled(tmp_path: Path, tunesvc_env) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    done = tunesvc("tune", "zoo:invres", "--shares", "50", "--trials-per-task", "8",
                   "--db", url, "--no-compare", env=tunesvc_env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "pointwise_depthwise" in done.stdout

    tuned = load("zoo:invres", share=50, db=url)
    (pair,) = tuned.compiled.pairs
    key = tuned.at.key
    # each form's time under the lookup rule: its best record, or TVM's default schedule
    # where that measured faster than every record (8 trials can leave that so)
    with Store(url) as store:
        best = {shash: best_record(store, key, shash).run_sec
                for shash in (pair.direct, pair.also, pair.variants[FUSED])}
    faster = FUSED if best[pair.variants[FUSED]] < best[pair.direct] + best[pair.also] \
        else DIRECT
    assert tuned.compiled.plan.pairs == (faster,)
    assert _runs(tuned) == ([FUSED] if faster == FUSED else [DIRECT, DIRECT])

    # Leave one form measured (in a copy each): the model follows.
    for keep, delete in ((FUSED, (pair.direct, pair.also)), (DIRECT, (pair.variants[FUSED],))):
        copy = tmp_path / f"only-{keep}.sqlite"
        shutil.copy(tmp_path / "db.sqlite", copy)
        with Store(f"sqlite:///{copy}") as with_one:
            for shash in delete:
                with_one.delete_records(key, shash)
        followed = load("zoo:invres", share=50, db=f"sqlite:///{copy}")
        assert followed.compiled.plan.pairs == (keep,)
        assert _runs(followed) == ([FUSED] if keep == FUSED else [DIRECT, DIRECT])
        inputs = sample_inputs(followed.model)
        assert compare(followed(*inputs), reference_outputs(followed.model, inputs)).ok

    # The benchmark of what fusing brings, on the same database: both forms compiled,
    # timed and checked (its figures are not asserted)
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, str(SCRIPTS / "bench_fused_pairs.py"), "zoo:invres",
                           "--db", url, "--share", "50", "--runs", "4", "--rounds", "2",
                           "--out", str(out)],
                          capture_output=True, text=True, env=tunesvc_env, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(out.read_text())
    assert [pair["form"] for pair in result["pairs"]] == [faster]
    assert max(result["max_abs_error"].values()) < 1e-4


def _runs(tuned: object) -> list[str]:
    """The operators the model runs for its pair, by how they compute ('fused': one)."""
    (pair,) = tuned.compiled.pairs
    return sorted(s.algorithm for s in tuned.sources if s.lookup.workload_shash in
                  {pair.direct, pair.also, pair.variants[FUSED]})
