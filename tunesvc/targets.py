"""Which TVM target a share tunes and runs for.

`--target cpu` is LLVM for this host with `num-cores` set to the share's cores;
`--target gpu` is CUDA for the first GPU NVML lists; `--target nvidia/...` is a TVM tag.
Building needs no GPU; tuning and running on `gpu` do, and say so when there is none.
"""

from __future__ import annotations

from dataclasses import dataclass

from tvm.target import Target

from tunesvc.errors import UserError
from tunesvc.gpus import scan_gpus
from workers.share import Share, ShareKind, machine_cores

# Limits every CUDA GPU since compute capability 3.0 has; tags give more exact values.
CUDA_LIMITS = {"max_threads_per_block": 1024, "max_shared_memory_per_block": 49152,
               "thread_warp_size": 32}


@dataclass(frozen=True)
class TargetSpec:
    """What the user asked for: 'cpu', 'gpu', or a TVM tag such as 'nvidia/nvidia-h100'."""

    name: str

    @property
    def share_kind(self) -> ShareKind:
        return "cpu" if self.name == "cpu" else "gpu"

    def validate(self) -> None:
        if self.name in ("cpu", "gpu"):
            return
        try:
            tagged = Target(self.name)
        except Exception:
            raise UserError(f"unknown target {self.name!r}: use cpu, gpu or a TVM CUDA tag "
                            "such as nvidia/nvidia-h100") from None
        if tagged.kind.name != "cuda":
            raise UserError(f"target tag {self.name!r} is not a CUDA target")

    def for_share(self, share: Share) -> Target:
        if self.name == "cpu":
            return Target({"kind": "llvm", "num-cores": share.core_count(machine_cores())})
        if self.name == "gpu":
            return Target(detected_cuda_target())
        return Target(self.name)


def detected_cuda_target() -> dict[str, object]:
    """A CUDA target for GPU 0, from NVML's compute capability; UserError without a GPU."""
    scan = scan_gpus()
    if not scan.gpus:
        raise UserError(f"--target gpu needs an NVIDIA GPU, and {scan.problem or 'none was found'}")
    major, minor = scan.gpus[0].compute_capability
    return {"kind": "cuda", "arch": f"sm_{major}{minor}", **CUDA_LIMITS}


def require_gpu() -> None:
    scan = scan_gpus()
    if not scan.gpus:
        raise UserError(f"a GPU target needs an NVIDIA GPU, and {scan.problem or 'none was found'}")
