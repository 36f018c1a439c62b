"""Resource shares: the `Share` value, the `ShareBackend` contract, one backend per kind.

`BACKENDS` maps a share's kind to its backend; `share.backend` finds it. A new kind of
share (a MIG slice, another accelerator) is one new module, named in
`base.BACKEND_CLASSES`.
"""

from workers.shares.base import (
    BACKEND_CLASSES,
    MPS_PERCENT_ENV,
    TVM_THREADS_ENV,
    Share,
    ShareBackend,
    ShareError,
    ShareProbe,
    backend_of,
    parse_percent,
    parse_shares,
)
from workers.shares.cpu import machine_cores

BACKENDS: dict[str, ShareBackend] = {kind: backend_of(kind) for kind in BACKEND_CLASSES}


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
