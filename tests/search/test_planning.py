"""How the coordinator sizes share pools: never more workers of a share than fit one device."""

from __future__ import annotations

from pathlib import Path

import tvm

from tunesvc.targets import TargetSpec
from tunesvc.tuning.dispatch import workers_for
from tunesvc.tuning.planning import folder_name, job_for
from workers.jobs import SearchConfig, TaskSpec
from workers.shares import Share
from workers.shares.cpu import CpuBackend


def test_four_gpu_workers_at_25_percent_tune_side_by_side() -> None:
    assert workers_for(Share("gpu", 25), jobs=19) == 4
    assert workers_for(Share("gpu", 30), jobs=19) == 3  # 90%, not 120%
    assert workers_for(Share("gpu", 100), jobs=19) == 1


def test_cpu_pools_fill_the_cores_and_never_exceed_the_jobs() -> None:
    assert workers_for(Share("cpu", 50), jobs=19, backend=CpuBackend(machine=2)) == 2
    assert workers_for(Share("cpu", 25), jobs=19, backend=CpuBackend(machine=16)) == 4
    assert workers_for(Share("cpu", 50), jobs=1, backend=CpuBackend(machine=16)) == 1
    # 33% of 2 cores is one core: two such workers fit, as for 50%
    assert workers_for(Share("cpu", 33), jobs=19, backend=CpuBackend(machine=2)) == 2


def test_a_cap_on_workers_lowers_what_fits_and_never_raises_it() -> None:
    two_cores = CpuBackend(machine=2)
    assert workers_for(Share("cpu", 50), jobs=19, backend=two_cores, most=1) == 1
    assert workers_for(Share("cpu", 50), jobs=19, backend=two_cores, most=8) == 2
    assert workers_for(Share("cpu", 25), jobs=3, backend=CpuBackend(machine=16), most=8) == 3


def test_a_fused_operator_with_a_name_longer_than_a_file_name_gets_a_job_folder(
        tmp_path: Path) -> None:
    """A fused operator names every operator in it (PP-OCRv4 det has one of 280 characters):
    its job folder must still be a name the file system takes, and two such long names that
    share their first characters must not share a folder."""
    at = TargetSpec("cpu").at(Share("cpu", 50))
    stem = "fused_" + "_".join(f"transpose{i}_tir_clip{i}_multiply{i}" for i in range(12))
    folders = [Path(job_for(at, _task(stem + suffix), 69, SearchConfig(8), tmp_path, 1).log_dir)
               for suffix in ("_concatenate1", "_concatenate2")]
    for folder in folders:
        folder.mkdir(parents=True)
        (folder / "job.log").write_text("measured\n")
    assert folders[0] != folders[1]
    assert all(len(part.encode()) <= 255 for folder in folders for part in folder.parts)
    assert folder_name("fused_conv2d_add") == "fused_conv2d_add"  # short names stay as they are


def _task(name: str) -> TaskSpec:
    return TaskSpec(name, "0" * 16, 1, tvm.IRModule())
