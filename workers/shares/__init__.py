"""Resource shares: the `Share` value, the `ShareBackend` contract, one backend per kind.

`BACKENDS` maps a share's kind to its backend; `share.backend` finds it. A new kind of
share (a MIG slice, another accelerator) is one new module registered here.
"""

from workers.shares.base import (
    MPS_PERCENT_ENV,
    TVM_THREADS_ENV,
    Share,
    ShareBackend,
    ShareError,
    ShareProbe,
    parse_percent,
    parse_shares,
)
from workers.shares.cpu import CpuBackend, machine_cores
from workers.shares.gpu import GpuBackend

BACKENDS: dict[str, ShareBackend] = {backend.kind: backend
                                     for backend in (CpuBackend(), GpuBackend())}


def backend_for_target(target_kind: str) -> ShareBackend | None:
    """The backend whose devices run TVM targets of `target_kind` (None if no backend)."""
    return next((b for b in BACKENDS.values() if target_kind in b.target_kinds), None)


__all__ = [
    "BACKENDS",
    "MPS_PERCENT_ENV",
    "TVM_THREADS_ENV",
    "Share",
    "ShareBackend",
    "ShareError",
    "ShareProbe",
    "backend_for_target",
    "machine_cores",
    "parse_percent",
    "parse_shares",
]
