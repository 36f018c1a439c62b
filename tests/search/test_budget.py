"""The model-level budget: heavier tasks get more trials; exhausted, capped and negligible
tasks stop. The last test tunes a real two-task model for real."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.conftest import tunesvc
from tunesvc.tuning.budget import BudgetAllocator, TaskProgress


def allocator(total: int, cap: int = 1000, chunk: int = 16, **weights: int) -> BudgetAllocator:
    tasks = {name: TaskProgress(name, weight) for name, weight in weights.items()}
    return BudgetAllocator(tasks, total, cap, chunk)


def hand_out_the_rest(budget: BudgetAllocator, best_sec: float, default_sec: float) -> set[str]:
    """The tasks that get the budget's remaining chunks, each job finishing at these
    latencies."""
    handed = set()
    while (chunk := budget.next_chunk()) is not None:
        handed.add(chunk[0])
        budget.finished(chunk[0], chunk[1], best_sec=best_sec, default_sec=default_sec)
    return handed


def test_every_task_first_gets_one_chunk_then_the_heavy_one_gets_the_rest() -> None:
    budget = allocator(80, heavy=1, light=1)
    first = [budget.next_chunk(), budget.next_chunk()]
    assert sorted(shash for shash, _ in first) == ["heavy", "light"]
    assert budget.next_chunk() is None  # both in flight: nothing to hand out yet
    budget.finished("heavy", 16, best_sec=1e-3, default_sec=1e-2)
    budget.finished("light", 16, best_sec=1e-5, default_sec=1e-4)
    handed = []
    while (chunk := budget.next_chunk()) is not None:
        handed.append(chunk)
        budget.finished(chunk[0], chunk[1], best_sec=1e-3, default_sec=1e-2)
    assert handed == [("heavy", 32), ("heavy", 48), ("heavy", 64)]
    assert budget.spent() == 80


def test_exhausted_capped_and_failed_tasks_stop() -> None:
    budget = allocator(200, cap=32, a=1, b=1, c=1)
    for _ in range(3):
        budget.next_chunk()
    budget.finished("a", 5, best_sec=1e-3, default_sec=1e-2)  # asked 16, space ran out
    budget.finished("b", 16, best_sec=1e-3, default_sec=1e-2)
    budget.finished("c", 0, best_sec=None, default_sec=None, failed=True)
    assert budget.next_chunk() == ("b", 32)
    budget.finished("b", 32, best_sec=1e-3, default_sec=1e-2)
    assert budget.next_chunk() is None  # a exhausted, b at its cap, c failed


def test_a_task_whose_every_schedule_failed_keeps_drawing_trials_at_its_default_latency() -> None:
    budget = allocator(200, cap=64, broken=1, fine=1)
    budget.next_chunk(), budget.next_chunk()
    # every candidate of "broken" computed wrong outputs: no best, its default kernel runs
    budget.finished("broken", 16, best_sec=None, default_sec=2e-3)
    budget.finished("fine", 16, best_sec=1e-4, default_sec=1e-3)
    assert budget.next_chunk() == ("broken", 32)


def test_a_failed_alternative_draws_nothing_while_its_group_has_a_good_schedule() -> None:
    tasks = {"direct": TaskProgress("direct", 1, group="conv"),
             "winograd": TaskProgress("winograd", 1, group="conv"),
             "other": TaskProgress("other", 1)}
    budget = BudgetAllocator(tasks, 120, 1000, chunk=16)
    for _ in tasks:
        budget.next_chunk()
    budget.finished("winograd", 16, best_sec=None, default_sec=5e-3)
    budget.finished("direct", 16, best_sec=1e-3, default_sec=5e-3)
    budget.finished("other", 16, best_sec=1e-6, default_sec=1e-5)
    handed = hand_out_the_rest(budget, best_sec=1e-3, default_sec=5e-3)
    assert "winograd" not in handed and "direct" in handed


def test_first_chunk_is_smaller() -> None:
    budget = BudgetAllocator({"a": TaskProgress("a", 1)}, 100, 100, chunk=16, first_chunk=8)
    assert budget.next_chunk() == ("a", 8)
    budget.finished("a", 8, best_sec=1e-3, default_sec=1e-2)
    assert budget.next_chunk() == ("a", 24)


def test_negligible_tasks_get_only_their_first_chunk() -> None:
    budget = allocator(200, big=1, tiny=1)
    budget.next_chunk(), budget.next_chunk()
    budget.finished("big", 16, best_sec=1e-2, default_sec=1e-1)
    budget.finished("tiny", 16, best_sec=1e-6, default_sec=1e-5)
    assert hand_out_the_rest(budget, best_sec=1e-2, default_sec=1e-1) == {"big"}


def grouped(total: int, single_ms: float, variants_ms: list[float]) -> BudgetAllocator:
    """A one-kernel task and a convolution with alternatives (each weight 1), every one
    measured once (one chunk of 8) at the given latencies."""
    tasks = {"single": TaskProgress("single", 1)}
    tasks |= {f"v{i}": TaskProgress(f"v{i}", 1, group="conv") for i in range(len(variants_ms))}
    latency_ms = dict(zip(tasks, [single_ms, *variants_ms]))
    budget = BudgetAllocator(tasks, total, 1000, chunk=16, first_chunk=8)
    for _ in tasks:
        shash, trials = budget.next_chunk() or ("", 0)
        assert trials == 8
        budget.finished(shash, 8, best_sec=latency_ms[shash] * 1e-3, default_sec=None)
    return budget


def test_alternatives_of_one_convolution_compete_as_one_task() -> None:
    # Three alternatives at 1.2 ms are one convolution of 1.2 ms that has had 24 trials;
    # the single kernel of 1.0 ms has had 8 and has more to give per trial.
    budget = grouped(200, single_ms=1.0, variants_ms=[1.2, 1.2, 1.2])
    assert budget.next_chunk() == ("single", 24)


def test_within_a_group_the_fastest_alternative_gets_the_chunk() -> None:
    budget = grouped(200, single_ms=0.01, variants_ms=[1.5, 1.0, 1.1])
    assert budget.next_chunk() == ("v1", 24)
    budget.finished("v1", 24, best_sec=1.0e-3, default_sec=None)  # no better
    assert budget.next_chunk() == ("v1", 40)  # still the closest to the group's best


def test_an_alternative_is_judged_by_its_kin_until_it_has_had_a_job_to_try_it() -> None:
    # A convolution with and without its residual add (same shapes), each with a direct and
    # a Winograd task; the Winograd tasks are kin. One Winograd task found 0.5 ms in 40
    # trials, the other drew 4 ms in its first chunk of 8. Its next job measures its kin's
    # 0.5 ms schedule first, so it gets the chunk rather than its direct rival at 1 ms.
    def task(name: str, trials: int, ms: float, **kw: str) -> TaskProgress:
        return TaskProgress(name, 2, trials=trials, best_sec=ms * 1e-3,
                            history=[(ms * 1e-3, trials)], **kw)

    tasks = {"d_add": task("d_add", 8, 1.0), "w_add": task("w_add", 8, 4.0, group="d_add", kin="w"),
             "d": task("d", 40, 1.0), "w": task("w", 40, 0.5, group="d", kin="w")}
    budget = BudgetAllocator(tasks, 1000, 1000, chunk=16)
    assert budget.next_chunk() == ("w_add", 24)
    budget.finished("w_add", 24, best_sec=4e-3, default_sec=None)  # the transplant did not help
    assert budget.next_chunk() == ("d_add", 24)  # its own 4 ms stands until its kin finds more
    budget.finished("d_add", 24, best_sec=1e-3, default_sec=None)
    budget.tasks["w"].best_sec = 0.3e-3  # the kin found something faster again
    assert budget.next_chunk() == ("w_add", 40)


def two_matmul_model(path: Path) -> Path:
    """x(32x512) -> MatMul 512x512 -> Relu -> MatMul 512x4: a heavy and a light task."""
    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)
               for name, shape in (("w1", (512, 512)), ("w2", (512, 4)))]
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
         helper.make_node("MatMul", ["r", "w2"], ["y"])],
        "two_matmuls",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [32, 512])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [32, 4])],
        initializer=weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, path)
    return path


@pytest.mark.slow
def test_a_real_budget_gives_the_heavier_task_more_trials(tmp_path: Path,
                                                          tunesvc_env: dict) -> None:
    model = two_matmul_model(tmp_path / "two.onnx")
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    done = tunesvc("tune", str(model), "--shares", "100", "--trials", "48", "--no-compare",
                   "--json", "--db", url, env=tunesvc_env)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)["results"]
    trials: dict[str, int] = {}
    for result in results:
        trials[result["task_name"]] = trials.get(result["task_name"], 0) + result["trials_measured"]
    heavy = next(name for name in trials if "relu" in name)
    light = next(name for name in trials if name != heavy)
    assert sum(trials.values()) == 48
    assert trials[heavy] > trials[light] >= 1
