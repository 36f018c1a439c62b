"""Stand-ins for the hardware, so search and budget logic can be tested without tuning.

`ReplayBuilder` names each candidate by its module's structural hash instead of building
it; `ReplayRunner` answers with the time recorded for that hash (or a fixed function of
it), as a simulation runner replays measurements. `FakeSearch` hands out given batches of
candidates in order. With them, `ms.tune_tasks` runs the real task loop, database and
cost-model updates in well under a second per round. Never used outside tests.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from tvm import te
from tvm.ir import IRModule
from tvm.ir.utils import derived_object
from tvm.s_tir import Schedule
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.meta_schedule.builder import BuilderInput, BuilderResult, PyBuilder
from tvm.s_tir.meta_schedule.runner import PyRunner, PyRunnerFuture, RunnerInput, RunnerResult
from tvm.s_tir.meta_schedule.search_strategy import PySearchStrategy

from workers.search import module_hash

TimeOf = Callable[[int], float]  # module hash -> seconds


def hashed_time(module: int) -> float:
    """A stable pseudo-measurement: 1..2 ms, fixed per module."""
    return 1e-3 * (1 + (module % 1000) / 1000)


@derived_object
class ReplayBuilder(PyBuilder):
    """'Builds' a candidate into its module hash (the runner's key), compiling nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.built: list[int] = []

    def build(self, build_inputs: list[BuilderInput]) -> list[BuilderResult]:
        hashes = [module_hash(item.mod) for item in build_inputs]
        self.built += hashes
        # MetaSchedule removes each artifact's folder once it is measured: give it one.
        return [BuilderResult(str(Path(tempfile.mkdtemp(prefix="replay-")) / str(h)), None)
                for h in hashes]


@derived_object
class _Done(PyRunnerFuture):
    def __init__(self, result: RunnerResult) -> None:
        super().__init__()
        self._result = result

    def done(self) -> bool:
        return True

    def result(self) -> RunnerResult:
        return self._result


@derived_object
class ReplayRunner(PyRunner):
    """Answers each candidate with `time_of(module hash)`: recorded, never measured."""

    def __init__(self, time_of: TimeOf = hashed_time) -> None:
        super().__init__()
        self.time_of = time_of
        self.runs = 0

    def run(self, runner_inputs: list[RunnerInput]) -> list[ms.runner.RunnerFuture]:
        self.runs += len(runner_inputs)
        return [_Done(RunnerResult([self.time_of(int(Path(item.artifact_path).name))], None))
                for item in runner_inputs]


@derived_object
class FakeSearch(PySearchStrategy):
    """Hands out `batches` in order, then None (the search is over)."""

    def __init__(self, batches: Iterable[list[ms.MeasureCandidate]]) -> None:
        super().__init__()
        self.batches = list(batches)
        self.given = 0
        self.asked: tuple[int, int] | None = None  # (max_trials, num_trials_per_iter)

    def _initialize_with_tune_context(self, context: ms.TuneContext) -> None:
        pass

    def pre_tuning(self, max_trials: int, num_trials_per_iter: int, *args: object,
                   **kwargs: object) -> None:
        self.asked = (max_trials, num_trials_per_iter)

    def post_tuning(self) -> None:
        pass

    def generate_measure_candidates(self) -> list[ms.MeasureCandidate] | None:
        if self.given >= len(self.batches):
            return None
        self.given += 1
        return self.batches[self.given - 1]

    def notify_runner_results(self, measure_candidates: list[ms.MeasureCandidate],
                              results: list[ms.runner.RunnerResult]) -> None:
        pass

    def clone(self) -> FakeSearch:
        return FakeSearch(self.batches)


def matmul_module(n: int, relu: bool = False, layout_free: bool = False) -> IRModule:
    """An n x n x n float32 matmul (block "matmul") as a one-function IRModule; with
    `relu`, a ReLU after it (block "relu"): the same matmul fused with an elementwise
    operator; with `layout_free`, its second input marked as a constant weight whose
    layout a schedule may rewrite (as a model's CPU convolutions are)."""
    a = te.placeholder((n, n), name="A")
    b = te.placeholder((n, n), name="B")
    k = te.reduce_axis((0, n), name="k")
    c = te.compute((n, n), lambda i, j: te.sum(a[i, k] * b[k, j], axis=k), name="matmul")
    out = c if not relu else te.compute(
        (n, n), lambda i, j: te.max(c[i, j], te.const(0.0, "float32")), name="relu")
    func = te.create_prim_func([a, b, out])
    return IRModule({"main": func.with_attr("layout_free_buffers", [1]) if layout_free
                     else func})


def split_candidates(mod: IRModule, block: str, count: int) -> list[ms.MeasureCandidate]:
    """`count` distinct candidates of `mod`: its outer two loops split by different
    factors (enough for tests; no search involved)."""
    candidates = []
    for outer in (1, 2, 4, 8, 16, 32):
        for inner in (1, 2, 4, 8, 16, 32):
            if len(candidates) == count:
                return candidates
            schedule = Schedule(mod)
            loops = schedule.get_loops(schedule.get_sblock(block))
            schedule.split(loops[0], [None, outer])
            schedule.split(loops[-2], [None, inner])
            args = ms.arg_info.ArgInfo.from_prim_func(mod["main"])
            candidates.append(ms.MeasureCandidate(schedule, args))
    raise ValueError(f"at most 36 split candidates, asked for {count}")
