"""The GPU path builds: a MetaSchedule candidate for an H100 target, compiled with nvcc.

Building needs no GPU (only measuring does), so this runs on any machine with nvcc.
"""

from __future__ import annotations

import shutil
import tarfile

import pytest
from tvm.s_tir import meta_schedule as ms
from tvm.target import Target

from tunesvc.pipeline.importer import extract_tasks, to_relax
from tunesvc.models.sources import load_model
from workers.intrinsics import load_tensor_intrinsics
from workers.measure import default_schedule, make_builder

pytestmark = pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")
TARGET = Target("nvidia/nvidia-h100")


def _candidates(count: int) -> list[ms.MeasureCandidate]:
    task = extract_tasks(to_relax(load_model("zoo:mlp")), TARGET)[0]
    # as a worker does: an earlier test in this process may have registered only the
    # CPU intrinsics, after which MetaSchedule no longer imports the others itself
    load_tensor_intrinsics(TARGET.kind.name)
    context = ms.TuneContext(
        mod=task.mod, target=TARGET, space_generator="post-order-apply",
        search_strategy=ms.search_strategy.EvolutionarySearch(population_size=64,
                                                              init_min_unmeasured=4),
        task_name=task.name, num_threads=1, rand_state=7)
    context.pre_tuning(max_trials=count, num_trials_per_iter=count,
                       design_spaces=context.space_generator.generate_design_space(task.mod),
                       database=ms.database.MemoryDatabase(),
                       cost_model=ms.cost_model.RandomModel())
    return list(context.generate_measure_candidates())


def test_tuned_cuda_candidate_builds_with_nvcc() -> None:
    (candidate,) = _candidates(1)
    assert any('thread_axis="threadIdx.x"' in line for line in candidate.sch.trace.as_python())
    (built,) = make_builder(1).build([ms.builder.BuilderInput(candidate.sch.mod, TARGET)])
    assert built.error_msg is None, built.error_msg
    assert "devc.o" in tarfile.open(built.artifact_path).getnames()  # the device code


def test_default_cuda_schedule_builds() -> None:
    task = extract_tasks(to_relax(load_model("zoo:mlp")), TARGET)[0]
    (built,) = make_builder(1).build([ms.builder.BuilderInput(default_schedule(task.mod, TARGET),
                                                              TARGET)])
    assert built.error_msg is None, built.error_msg
