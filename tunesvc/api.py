"""Tuning from Python, for models built in Python (a PyTorch module through
`tunesvc.models.pytorch.from_module`) as well as named ones:

    model = from_module(net, (example,))
    tune(model, shares="50,100", trials=300)
    tuned = tunesvc.runtime.load(model, share=50)   # compiled with the share's kernels

The same planning and workers as `tunesvc tune`, without its progress output.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tunesvc.config import resolve_db_url

if TYPE_CHECKING:  # heavy imports (TVM, Ray) wait until tuning starts
    from tunesvc.tuning.dispatch import ShareSummary
    from tunesvc.models.base import LoadedModel, Shape

DEFAULT_TRIALS_PER_TASK = 32


def per_task_budget(total_trials: int | None, trials_per_task: int | None) -> int:
    """The per-task budget (without a model-level budget) or cap (with it)."""
    if trials_per_task is not None:
        return trials_per_task
    return total_trials if total_trials is not None else DEFAULT_TRIALS_PER_TASK


def tune(model: str | LoadedModel, shares: str = "100", trials: int | None = None,
         trials_per_task: int | None = None, target: str = "cpu", db: str | None = None,
         input_shapes: dict[str, Shape] | None = None,
         input_values: dict[str, str] | None = None,
         transfer: bool = False) -> list[ShareSummary]:
    """Tune `model` at each share (comma-separated percentages) and store the best
    schedules in `db` (default: the tunesvc home's SQLite file). With `trials`, a
    model-level budget per share, `trials_per_task` capping each task; without it,
    `trials_per_task` (default 32) for every task. Returns the per-share summaries."""
    from tunesvc.tuning import execute as tuning
    from tunesvc.targets import TargetSpec
    from workers.shares import parse_shares

    spec = TargetSpec(target)
    request = tuning.TuneRequest(
        model=model, target=spec, shares=tuple(parse_shares(shares, spec.share_kind)),
        trials_per_task=per_task_budget(trials, trials_per_task), db_url=resolve_db_url(db),
        input_shapes=dict(input_shapes or {}), total_trials=trials,
        input_values=dict(input_values or {}), transfer=transfer)
    plan = tuning.prepare(request)
    return tuning.execute(plan, lambda _result: None).summaries
