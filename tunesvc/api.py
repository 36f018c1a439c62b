"""Tuning from Python, for models built in Python (a PyTorch module through
`tunesvc.models.pytorch.from_module`) as well as named ones:

    model = from_module(net, (example,))
    tune(model, shares="50,100", trials=300)
    tuned = tunesvc.runtime.load(model, share=50)   # compiled with the share's kernels

The same planning and workers as `tunesvc tune`, without its progress output.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tunesvc.tuning.request import WARM_MODEL

if TYPE_CHECKING:  # heavy imports (TVM, Ray) wait until tuning starts
    from tunesvc.tuning.dispatch import ShareSummary
    from tunesvc.models.base import LoadedModel, Shape

def tune(model: str | LoadedModel, shares: str = "100", trials: int | None = None,
         trials_per_task: int | None = None, target: str = "cpu", db: str | None = None,
         input_shapes: dict[str, Shape] | None = None,
         input_values: dict[str, str] | None = None,
         transfer: bool = False, warm: bool = WARM_MODEL,
         workers_per_share: int | None = None) -> list[ShareSummary]:
    """Tune `model` at each share (comma-separated percentages) and store the best
    schedules in `db` (default: the tunesvc home's SQLite file). With `trials`, a
    model-level budget per share, `trials_per_task` capping each task; without it,
    `trials_per_task` (default 32) for every task; `workers_per_share` caps the workers
    tuning each share at once (default: as many as fit). Returns the per-share summaries."""
    from tunesvc.tuning.execute import execute
    from tunesvc.tuning.planning import prepare
    from tunesvc.tuning.request import TuneRequest

    request = TuneRequest.of(model, target, shares, total_trials=trials,
                             trials_per_task=trials_per_task, db=db, input_shapes=input_shapes,
                             input_values=input_values, transfer=transfer,
                             warm=warm, workers_per_share=workers_per_share)
    return execute(prepare(request), lambda _result: None).summaries
