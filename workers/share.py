"""A resource share: the slice of one device a tuning worker or a model runs on.

A share is a percentage (1..100) of one device: of a GPU's threads (NVIDIA MPS) or of the
machine's CPU cores (affinity + TVM thread count). This module only describes shares; it
never touches the process it runs in (see `workers.pinning` for that).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Literal

ShareKind = Literal["cpu", "gpu"]
SHARE_KINDS: tuple[ShareKind, ...] = ("cpu", "gpu")
MPS_PERCENT_ENV = "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"


class ShareError(ValueError):
    """A share that cannot exist: out of range, or smaller than one CPU core."""


@dataclass(frozen=True, order=True)
class Share:
    """`percent` of one device of `kind`."""

    kind: ShareKind
    percent: int

    def __post_init__(self) -> None:
        if self.kind not in SHARE_KINDS:
            raise ShareError(f"unknown share kind {self.kind!r}; expected one of {SHARE_KINDS}")
        if isinstance(self.percent, bool) or not isinstance(self.percent, int):
            raise ShareError(f"share must be a whole percentage, got {self.percent!r}")
        if not 1 <= self.percent <= 100:
            raise ShareError(f"share {self.percent}% is out of range: shares are 1..100 percent")

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.percent}%"

    def core_count(self, machine_cores: int) -> int:
        """Cores a CPU share gets on a machine with `machine_cores` cores.

        Rounded to the nearest whole core; a share below half a core is an error rather than
        silently becoming a bigger share than asked for.
        """
        cores = math.floor(machine_cores * self.percent / 100 + 0.5)
        if cores < 1:
            raise ShareError(
                f"share {self.percent}% of {machine_cores} cores is less than one core; "
                f"the smallest CPU share here is {math.ceil(50 / machine_cores)}%"
            )
        return cores

    def gpu_fraction(self) -> float:
        """The fraction of one GPU, as Ray's fractional `num_gpus` resource."""
        return self.percent / 100


def parse_percent(text: str) -> int:
    """'50' or '50%' -> 50; anything else is a ShareError naming the bad value."""
    stripped = text.strip().removesuffix("%")
    try:
        value = int(stripped)
    except ValueError:
        raise ShareError(f"share {text!r} is not a whole percentage (1..100)") from None
    Share("cpu", value)  # validates the range
    return value


def parse_shares(text: str, kind: ShareKind) -> list[Share]:
    """A comma-separated list such as '25,50,100' -> sorted, de-duplicated shares."""
    parts = [part for part in text.split(",") if part.strip()]
    if not parts:
        raise ShareError("no shares given; pass percentages such as --shares 50,100")
    return sorted({Share(kind, parse_percent(part)) for part in parts})


def machine_cores() -> int:
    """Cores this process may use (its affinity mask, not the whole machine)."""
    return len(os.sched_getaffinity(0))
