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
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Any

from tvm.target import Target

from schedules_db.records import SliceKey
from schedules_db.targetkey import slice_key, target_json
from tunesvc.errors import UserError
from tunesvc.gpus import GpuInfo, scan_gpus
from workers.cpu_isa import host_cpu_attrs
from workers.shares import BACKENDS, Share, backend_for_target

# Limits every CUDA GPU since compute capability 3.0 has; tags give more exact values.
CUDA_LIMITS = {"max_threads_per_block": 1024, "max_shared_memory_per_block": 49152,
               "thread_warp_size": 32}


@dataclass(frozen=True)
class ShareTarget:
    """One share's target, built once and passed on: the TVM target, its canonical JSON
    (what each record keeps) and the database slice its records belong to."""

    share: Share
    target: Target = field(compare=False, repr=False)
    json: str
    key: SliceKey

    @classmethod
    def of(cls, target: Target, share: Share) -> ShareTarget:
        """The one place a slice key is made from a target."""
        text = target_json(target)
        return cls(share, target, text, slice_key(text, share.kind, share.percent))

    @property
    def attrs(self) -> dict[str, Any]:
        return dict(json.loads(self.json))


@dataclass(frozen=True)
class TargetSpec:
    """What the user asked for: 'cpu', 'gpu', a TVM target as JSON, or a TVM tag."""

    name: str

    @property
    def share_kind(self) -> str:
        """The kind of share this target runs at: named (`cpu`, `gpu`) or by its device."""
        if self.name in BACKENDS:
            return self.name
        backend = backend_for_target(self._explicit().kind.name)
        assert backend is not None  # _explicit accepts only kinds some backend runs
        return backend.kind

    def validate(self) -> None:
        if self.name not in BACKENDS:
            self._explicit()

    def require_device(self) -> None:
        """UserError if tuning or running for this target needs a device this host lacks
        (building for it does not)."""
        check = DEVICE_CHECKS.get(self.share_kind)
        if check is not None:
            check()

    def for_share(self, share: Share) -> Target:
        return Target(self._attrs_for(share))

    def at(self, share: Share) -> ShareTarget:
        """The target at `share`, with its JSON and slice key."""
        return ShareTarget.of(self.for_share(share), share)

    def _attrs_for(self, share: Share) -> dict[str, Any]:
        detect = DETECTED_TARGETS.get(self.name)
        attrs = detect() if detect else _attrs(self._explicit())
        return {**attrs, **share.backend.target_attrs(share)}

    def _explicit(self) -> Target:
        """The user's JSON target or tag; UserError unless it is an LLVM or CUDA target."""
        try:
            target = Target(json.loads(self.name) if self.name.lstrip().startswith("{")
                            else self.name)
        except Exception:
            raise UserError(f"unknown target {self.name!r}: use cpu, gpu, a TVM target as JSON "
                            "such as '{\"kind\": \"llvm\", \"mcpu\": \"skylake-avx512\"}', "
                            "or a TVM tag such as nvidia/nvidia-h100") from None
        if backend_for_target(target.kind.name) is None:
            raise UserError(f"target {self.name!r} is a {target.kind.name} target; tunesvc "
                            "tunes llvm (CPU) and cuda (GPU) targets")
        return target


def _attrs(target: Target) -> dict[str, Any]:
    return dict(json.loads(target_json(target)))


def host_cpu_target() -> dict[str, Any]:
    """LLVM for this host's instruction set (no `num-cores`: that comes with a share)."""
    return {"kind": "llvm", **host_cpu_attrs()}


def detected_cuda_target() -> dict[str, Any]:
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


# What `--target cpu` and `--target gpu` mean: the device found here, named by share kind.
DETECTED_TARGETS: dict[str, Callable[[], dict[str, Any]]] = {
    "cpu": host_cpu_target, "gpu": detected_cuda_target}
DEVICE_CHECKS: dict[str, Callable[[], None]] = {"gpu": require_gpu}
