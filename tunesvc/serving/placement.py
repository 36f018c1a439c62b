"""Where each replica of each served model runs: its share and, on a CPU, its own cores.

Controlled (the default): replicas get disjoint cores, and shares that do not fit the
machine are refused. With `overlap`, replicas may share cores (what two services do by
default): each gets its share's count of cores, taken round the machine.
"""

from __future__ import annotations

from dataclasses import dataclass

from tunesvc.errors import UserError
from tunesvc.serving.spec import ServedModel
from workers.shares import Share
from workers.shares.cpu import PROCESS_CORES, core_count


@dataclass(frozen=True)
class Placement:
    """One replica's slot: the model, the replica's index, its share and its cores
    (empty on a GPU, where the share is an MPS percentage)."""

    model: str
    replica: int
    share: Share
    cores: tuple[int, ...]

    @property
    def label(self) -> str:
        noun = "core" if len(self.cores) == 1 else "cores"
        where = f" on {noun} {','.join(map(str, self.cores))}" if self.cores else ""
        return f"{self.model}#{self.replica} at {self.share.percent}%{where}"


def place(models: list[ServedModel], share_kind: str, overlap: bool = False,
          available: tuple[int, ...] = PROCESS_CORES) -> list[Placement]:
    """Each replica's slot on a device of `share_kind`, or UserError when they do not fit."""
    slots = [(m.name, r, Share(share_kind, m.share)) for m in models for r in range(m.replicas)]
    if share_kind != "cpu":
        _check_total([s.percent for _, _, s in slots], overlap, "the GPU")
        return [Placement(name, r, share, ()) for name, r, share in slots]
    counts = [core_count(share, len(available)) for _, _, share in slots]
    _check_fits(counts, len(available), overlap)
    cores = sorted(available)
    placements, start = [], 0
    for (name, replica, share), count in zip(slots, counts):
        taken = tuple(sorted(cores[(start + i) % len(cores)] for i in range(count)))
        placements.append(Placement(name, replica, share, taken))
        start = (start + count) % len(cores)
    return placements


def _check_fits(counts: list[int], machine: int, overlap: bool) -> None:
    if sum(counts) > machine and not overlap:
        raise UserError(f"the models' replicas need {sum(counts)} cores and this machine has "
                        f"{machine}: lower their shares or replicas, or pass --overlap to let "
                        "them share cores")


def _check_total(percents: list[int], overlap: bool, device: str) -> None:
    if sum(percents) > 100 and not overlap:
        raise UserError(f"the models' shares add up to {sum(percents)}% of {device}: lower "
                        "them, or pass --overlap to let them share it")
