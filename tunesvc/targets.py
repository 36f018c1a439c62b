"""Which TVM target a share tunes and runs for.

`--target cpu` is LLVM for this host's instruction set (its CPU as LLVM names it, see
`workers.cpu_isa`) with `num-cores` set to the share's cores; `--target gpu` is CUDA for
the first GPU NVML lists; anything else is a TVM target as JSON (`{"kind": "llvm",
"mcpu": "skylake-avx512"}`) or a TVM tag (`nvidia/nvidia-h100`), to tune for another
machine. Building needs no GPU; tuning and running on `gpu` do, and say so when there is
none.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tvm.target import Target

from tunesvc.errors import UserError
from tunesvc.gpus import GpuInfo, scan_gpus
from workers.cpu_isa import host_cpu_attrs
from workers.share import Share, ShareKind, machine_cores

# Limits every CUDA GPU since compute capability 3.0 has; tags give more exact values.
CUDA_LIMITS = {"max_threads_per_block": 1024, "max_shared_memory_per_block": 49152,
               "thread_warp_size": 32}
SHARE_KIND_OF_TARGET: dict[str, ShareKind] = {"llvm": "cpu", "cuda": "gpu"}


@dataclass(frozen=True)
class TargetSpec:
    """What the user asked for: 'cpu', 'gpu', a TVM target as JSON, or a TVM tag."""

    name: str

    @property
    def share_kind(self) -> ShareKind:
        if self.name in ("cpu", "gpu"):
            return self.name  # type: ignore[return-value]
        return SHARE_KIND_OF_TARGET[self._explicit().kind.name]

    def validate(self) -> None:
        if self.name not in ("cpu", "gpu"):
            self._explicit()

    def for_share(self, share: Share) -> Target:
        return Target(self._attrs_for(share))

    def _attrs_for(self, share: Share) -> dict[str, Any]:
        if self.name == "gpu":
            return detected_cuda_target()
        attrs = host_cpu_target() if self.name == "cpu" else _attrs(self._explicit())
        if attrs["kind"] == "llvm":
            attrs["num-cores"] = share.core_count(machine_cores())
        return attrs

    def _explicit(self) -> Target:
        """The user's JSON target or tag; UserError unless it is an LLVM or CUDA target."""
        try:
            target = Target(json.loads(self.name) if self.name.lstrip().startswith("{")
                            else self.name)
        except Exception:
            raise UserError(f"unknown target {self.name!r}: use cpu, gpu, a TVM target as JSON "
                            "such as '{\"kind\": \"llvm\", \"mcpu\": \"skylake-avx512\"}', "
                            "or a TVM tag such as nvidia/nvidia-h100") from None
        if target.kind.name not in SHARE_KIND_OF_TARGET:
            raise UserError(f"target {self.name!r} is a {target.kind.name} target; tunesvc "
                            "tunes llvm (CPU) and cuda (GPU) targets")
        return target


def _attrs(target: Target) -> dict[str, Any]:
    return dict(json.loads(str(target)))


def host_cpu_target() -> dict[str, Any]:
    """LLVM for this host's instruction set (no `num-cores`: that comes with a share)."""
    return {"kind": "llvm", **host_cpu_attrs()}


def detected_cuda_target() -> dict[str, object]:
    """A CUDA target for GPU 0, from NVML's compute capability; UserError without a GPU."""
    major, minor = first_gpu().compute_capability
    return {"kind": "cuda", "arch": f"sm_{major}{minor}", **CUDA_LIMITS}


def require_gpu() -> None:
    first_gpu()


def first_gpu() -> GpuInfo:
    scan = scan_gpus()
    if not scan.gpus:
        raise UserError(f"a GPU target needs an NVIDIA GPU, and {scan.problem or 'none was found'}")
    return scan.gpus[0]
