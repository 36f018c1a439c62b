"""Building and measuring candidates inside a share-pinned worker.

TVM's default build function imports `tvm.s_tir.tensor_intrin` in every build process,
which parses hundreds of TVMScript functions (~26 s on a 2-core machine) and, since
LocalBuilder starts a fresh pool for every batch, would be paid per batch and trip the
build timeout. Candidates reaching the builder are already scheduled, so that import is
not needed there: `build_candidate` is the default build without it.
"""

from __future__ import annotations

import os

from tvm.ir import IRModule
from tvm.runtime import Module
from tvm.s_tir import dlight
from tvm.s_tir import meta_schedule as ms
from tvm.target import Target

from schedules_db.store import mean_run_sec

BUILD_TIMEOUT_SEC = 120.0
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


def make_builder(cores: int) -> ms.builder.LocalBuilder:
    return ms.builder.LocalBuilder(max_workers=cores, timeout_sec=BUILD_TIMEOUT_SEC,
                                   f_build=build_candidate)


def make_runner() -> ms.runner.LocalRunner:
    return ms.runner.LocalRunner(timeout_sec=RUN_TIMEOUT_SEC)


def default_schedule(mod: IRModule, target: Target) -> IRModule:
    """The schedule an untuned operator gets when compiled: none on CPU, dlight on GPU
    (the same rules `compile_relax` falls back to)."""
    if target.kind.name != "cuda":
        return mod
    rules = dlight.ApplyDefaultSchedule(
        dlight.gpu.Matmul(), dlight.gpu.GEMV(), dlight.gpu.Reduction(),
        dlight.gpu.GeneralReduction(), dlight.gpu.Fallback(),
    )
    with target:
        return rules(mod)


def device_name(target: Target) -> str:
    """The runtime device a target's code runs on ('llvm' code runs on 'cpu')."""
    return "cpu" if target.kind.name == "llvm" else target.kind.name


def measure_module(mod: IRModule, target: Target, builder: ms.builder.Builder,
                   runner: ms.runner.Runner) -> float | None:
    """Mean run time of `mod` as MetaSchedule measures candidates; None if it fails."""
    (built,) = builder.build([ms.builder.BuilderInput(mod, target)])
    if built.error_msg is not None or built.artifact_path is None:
        return None
    args_info = ms.arg_info.ArgInfo.from_entry_func(mod, remove_preproc=True)
    runner_input = ms.runner.RunnerInput(built.artifact_path, device_name(target), args_info)
    (future,) = runner.run([runner_input])
    result = future.result()
    if result.error_msg is not None or result.run_secs is None:
        return None
    return mean_run_sec(tuple(float(sec) for sec in result.run_secs))
