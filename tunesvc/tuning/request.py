"""What a user asks `tunesvc tune` (or `tunesvc.api.tune`) for, built in one place from
the values both take: the target parsed, the shares checked, the per-task budget settled."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tunesvc.models.spec import ModelSpec

if TYPE_CHECKING:  # the CLI imports this module for its help text: nothing heavy here
    from tunesvc.models.base import LoadedModel, Shape
    from tunesvc.targets import TargetSpec
    from workers.shares import Share

DEFAULT_TRIALS_PER_TASK = 32
# Learn from other workloads' records first (workers.warm_model): on by default since a
# held-out model showed it pays (docs/benchmarks.md); one value for the CLI, API and request.
WARM_MODEL = True


def per_task_budget(total_trials: int | None, trials_per_task: int | None) -> int:
    """The per-task budget (without a model-level budget) or cap (with it)."""
    if trials_per_task is not None:
        return trials_per_task
    return total_trials if total_trials is not None else DEFAULT_TRIALS_PER_TASK


@dataclass(frozen=True)
class TuneRequest:
    model: ModelSpec | LoadedModel  # as the user named it, or a model already loaded
    target: TargetSpec
    shares: tuple[Share, ...]
    trials_per_task: int  # with total_trials: a cap per task
    db_url: str
    ray_address: str | None = None
    log_dir: Path | None = None
    fresh: bool = False
    total_trials: int | None = None  # a model-level budget per share (`--trials`)
    transfer: bool = False  # new slices start from the nearest tuned shares' best
    warm: bool = WARM_MODEL
    workers_per_share: int | None = None  # None: as many as fit on the device at once

    @classmethod
    def of(cls, model: str | ModelSpec | LoadedModel, target: str, shares: str, *,
           total_trials: int | None = None, trials_per_task: int | None = None,
           db: str | None = None, input_shapes: dict[str, Shape] | None = None,
           input_values: dict[str, str] | None = None, transfer: bool = False,
           warm: bool = WARM_MODEL, workers_per_share: int | None = None,
           ray_address: str | None = None, log_dir: Path | None = None,
           fresh: bool = False) -> TuneRequest:
        """The request from what a user gives: `target` as `--target` takes it, `shares`
        as comma-separated percentages, `db` None for the default database; a model named
        by a string gets `input_shapes` and `input_values`."""
        from tunesvc.config import resolve_db_url
        from tunesvc.targets import TargetSpec
        from workers.shares import parse_shares

        if isinstance(model, str):
            model = ModelSpec(model, dict(input_shapes or {}), dict(input_values or {}))
        spec = TargetSpec(target)
        return cls(model=model, target=spec, shares=tuple(parse_shares(shares, spec.share_kind)),
                   trials_per_task=per_task_budget(total_trials, trials_per_task),
                   db_url=resolve_db_url(db), ray_address=ray_address, log_dir=log_dir,
                   fresh=fresh, total_trials=total_trials, transfer=transfer, warm=warm,
                   workers_per_share=workers_per_share)
