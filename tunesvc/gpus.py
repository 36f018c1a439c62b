"""GPU discovery through NVML (nvidia-ml-py): what `tunesvc gpus` lists.

Never creates a CUDA context: the coordinator must not hold one, and MPS settings are only
read when a process creates its context.
"""

from __future__ import annotations

from dataclasses import dataclass

import psutil

MPS_SERVER_PROCESS = "nvidia-cuda-mps-server"


@dataclass(frozen=True)
class GpuInfo:
    index: int
    uuid: str
    name: str
    memory_total_mib: int
    multiprocessors: int | None
    compute_capability: tuple[int, int]
    mps_served: bool


@dataclass(frozen=True)
class GpuScan:
    """Either the GPUs found or why none could be listed."""

    gpus: tuple[GpuInfo, ...]
    problem: str | None


def scan_gpus() -> GpuScan:
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        return GpuScan((), f"no NVIDIA driver found (NVML: {exc})")
    try:
        count = pynvml.nvmlDeviceGetCount()
        mps_pids = _mps_server_pids()
        return GpuScan(tuple(_gpu_info(i, mps_pids) for i in range(count)), None)
    finally:
        pynvml.nvmlShutdown()


def _gpu_info(index: int, mps_pids: set[int]) -> GpuInfo:
    import pynvml

    handle = pynvml.nvmlDeviceGetHandleByIndex(index)
    name = pynvml.nvmlDeviceGetName(handle)
    return GpuInfo(
        index=index,
        uuid=str(pynvml.nvmlDeviceGetUUID(handle)),
        name=name.decode() if isinstance(name, bytes) else str(name),
        memory_total_mib=int(pynvml.nvmlDeviceGetMemoryInfo(handle).total // 2**20),
        multiprocessors=_multiprocessors(handle),
        compute_capability=tuple(pynvml.nvmlDeviceGetCudaComputeCapability(handle)),  # type: ignore[arg-type]
        mps_served=bool(mps_pids & _compute_pids(handle)),
    )


def _multiprocessors(handle: object) -> int | None:
    import pynvml

    try:
        return int(pynvml.nvmlDeviceGetAttributes_v2(handle).multiprocessorCount)
    except Exception:  # not supported outside MIG on some drivers
        return None


def _compute_pids(handle: object) -> set[int]:
    import pynvml

    try:
        return {proc.pid for proc in pynvml.nvmlDeviceGetComputeRunningProcesses(handle)}
    except Exception:
        return set()


def _mps_server_pids() -> set[int]:
    # An MPS server holds the device's context on behalf of its clients: if it appears among
    # the device's compute processes, MPS is serving that GPU.
    return {
        proc.info["pid"]
        for proc in psutil.process_iter(["pid", "name"])
        if proc.info["name"] == MPS_SERVER_PROCESS
    }

