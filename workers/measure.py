"""Building and measuring candidates inside a share-pinned worker.

TVM's default build function imports `tvm.s_tir.tensor_intrin` in every build process,
which parses hundreds of TVMScript functions (~26 s on a 2-core machine) and, since
LocalBuilder starts a fresh pool for every batch, would be paid per batch and trip the
build timeout. Candidates reaching the builder are already scheduled, so that import is
not needed there: `build_candidate` is the default build without it, and `WarmBuilder`
keeps its build processes for the worker's life.
"""

from __future__ import annotations

import os

import tvm
from tvm.ir import IRModule
from tvm.ir.utils import derived_object
from tvm.runtime import Module
from tvm.s_tir import Schedule, dlight
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.meta_schedule.builder import PyBuilder
from tvm.s_tir.meta_schedule.builder.local_builder import _serialize_params, _worker_func
from tvm.support.popen_pool import MapResult, PopenPoolExecutor, StatusKind
from tvm.target import Target

from schedules_db.records import mean_run_sec

BUILD_TIMEOUT_SEC = 30.0  # builds take ~1 s; one that takes longer blocks its whole batch
RUN_TIMEOUT_SEC = 60.0


CUDA_COMPILER_ENV = "TVM_CUDA_COMPILE_MODE"


def build_candidate(mod: IRModule, target: Target, _params: object) -> Module:
    # nvcc is what both the build machines and the GPU machines have; TVM's default (NVRTC)
    # needs the cuda-python bindings. An explicit setting wins.
    os.environ.setdefault(CUDA_COMPILER_ENV, "nvcc")
    from tvm.driver import build as tvm_build
    from tvm.s_tir.transform import RemoveWeightLayoutRewriteBlock

    mod = RemoveWeightLayoutRewriteBlock(skip_tensor_rewrite=True)(mod)
    return tvm_build(mod, target=target)


@derived_object
class WarmBuilder(PyBuilder):
    """LocalBuilder's build with one process pool kept for the builder's whole life.

    LocalBuilder starts a pool per batch (and one more when constructed), so every batch
    pays for new processes that import TVM. This pool's processes are reused until one
    times out, and then only that one is replaced.
    """

    def __init__(self, max_workers: int, timeout_sec: float = BUILD_TIMEOUT_SEC) -> None:
        super().__init__()
        self.timeout_sec = timeout_sec
        self.pool = PopenPoolExecutor(max_workers=max_workers, timeout=timeout_sec)

    def build(self, build_inputs: list[ms.builder.BuilderInput]) -> list[ms.builder.BuilderResult]:
        # None: the build process's own default export (a registered TVM function)
        work = [(build_candidate, None, item.mod, item.target,
                 _serialize_params(item.params)) for item in build_inputs]
        return [self._result(outcome) for outcome in
                self.pool.map_with_error_catching(lambda args: _worker_func(*args), work)]

    def _result(self, outcome: MapResult) -> ms.builder.BuilderResult:
        if outcome.status == StatusKind.COMPLETE:
            return ms.builder.BuilderResult(outcome.value, None)
        if outcome.status == StatusKind.TIMEOUT:
            return ms.builder.BuilderResult(None, f"build timed out after {self.timeout_sec} s")
        return ms.builder.BuilderResult(None, f"build failed:\n{outcome.value}")


def make_builder(cores: int) -> WarmBuilder:
    return WarmBuilder(max_workers=cores)


def make_runner(evaluator: ms.runner.EvaluatorConfig | None = None) -> ms.runner.LocalRunner:
    return ms.runner.LocalRunner(timeout_sec=RUN_TIMEOUT_SEC, evaluator_config=evaluator)


def default_schedule(mod: IRModule, target: Target) -> IRModule:
    """The schedule an untuned operator gets when compiled: none on CPU, dlight on GPU
    (the same rules `compile_relax` falls back to)."""
    if target.kind.name != "cuda":
        return mod
    with target:
        return gpu_default_schedule()(mod)


def gpu_default_schedule() -> tvm.transform.Pass:
    """The one list of rules that schedules a GPU operator nobody tuned."""
    return dlight.ApplyDefaultSchedule(
        dlight.gpu.Matmul(), dlight.gpu.GEMV(), dlight.gpu.Reduction(),
        dlight.gpu.GeneralReduction(), dlight.gpu.Fallback(),
    )


def device_name(target: Target) -> str:
    """The runtime device a target's code runs on ('llvm' code runs on 'cpu')."""
    return "cpu" if target.kind.name == "llvm" else target.kind.name


def measure_module(mod: IRModule, target: Target, builder: ms.builder.Builder,
                   runner: ms.runner.Runner) -> float | None:
    """Mean run time of `mod` as MetaSchedule measures candidates; None if it fails."""
    args_info = ms.arg_info.ArgInfo.from_entry_func(mod, remove_preproc=True)
    (secs,) = measure_candidates([ms.MeasureCandidate(Schedule(mod), args_info)], target,
                                 builder, runner)
    return None if secs is None else mean_run_sec(tuple(secs))


def measure_candidates(candidates: list[ms.MeasureCandidate], target: Target,
                       builder: ms.builder.Builder,
                       runner: ms.runner.Runner) -> list[list[float] | None]:
    """Run seconds of each candidate, measured as MetaSchedule measures a batch; None
    where the build or the run failed."""
    built = builder.build([ms.builder.BuilderInput(c.sch.mod, target) for c in candidates])
    inputs = [(i, ms.runner.RunnerInput(b.artifact_path, device_name(target), c.args_info))
              for i, (b, c) in enumerate(zip(built, candidates))
              if b.error_msg is None and b.artifact_path is not None]
    secs: list[list[float] | None] = [None] * len(candidates)
    futures = runner.run([item for _, item in inputs]) if inputs else []
    for (i, _), future in zip(inputs, futures):
        result = future.result()
        if result.error_msg is None and result.run_secs is not None:
            secs[i] = [float(s) for s in result.run_secs]
    return secs
