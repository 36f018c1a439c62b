"""`tunesvc tune` as a function, once planned (`tunesvc.tuning.planning`): run the jobs on Ray,
summarize, and measure the tuned model at each share.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import ray

from schedules_db import Store
from tunesvc.tuning.dispatch import Dispatcher, ShareSummary, connect_ray, summarize
from tunesvc.errors import UserError
from tunesvc.cluster.placement import isa_placement
from tunesvc.tuning.interrupts import noting_ctrl_c
from tunesvc.tuning.planning import TunePlan, slices_of
from tunesvc.tuning.registration import register_tasks
from tunesvc.evaluation.at_shares import MeasuredShare, measure_shares
from tunesvc.models.spec import ModelSpec
from workers.jobs import TuneResult
from workers.logs import output_to_file
from workers.shares import Share, machine_cores

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TuneOutcome:
    plan: TunePlan
    results: list[TuneResult]
    summaries: list[ShareSummary]
    ray_description: str


def execute(plan: TunePlan, on_result: Callable[[TuneResult], None],
            say: Callable[[str], None] | None = None) -> TuneOutcome:
    """Run every job of the plan on Ray; returns when all have a result. `say` gets what
    a user should see on the way (where workers run, what --fresh deleted)."""
    register_tasks(plan.request.db_url, plan.model_name, plan.fingerprint, plan.tasks)
    if not plan.has_work:
        return TuneOutcome(plan, plan.already_tuned, summarize(plan.already_tuned), "no workers")
    plan.log_root.mkdir(parents=True, exist_ok=True)
    with output_to_file(plan.log_root / "ray.log"):
        ray_description = connect_ray(plan.request.ray_address, machine_cores())
    if ray_description.startswith("local"):
        _check_not_busy(plan.request.shares)
    if say:
        say(f"Workers on {ray_description}")
    log.info("tuning %s on %s", plan.model_name, ray_description)
    any_target = next(iter(plan.share_targets.values()))
    dispatcher = Dispatcher(plan.request.db_url,
                            isa_placement(any_target.attrs, ray.cluster_resources()),
                            most_workers=plan.request.workers_per_share)
    results = dispatcher.run(plan.sources, on_result, when_ready=lambda: _forget(plan, say))
    return TuneOutcome(plan, plan.already_tuned + results, summarize(plan.already_tuned + results),
                       ray_description)


@contextmanager
def interruptible() -> Iterator[None]:
    """Ctrl-C stops the workers and says that nothing measured is lost (exit status 130)."""
    try:
        with noting_ctrl_c():
            yield
    except KeyboardInterrupt:
        ray.shutdown()
        print("\nInterrupted: workers stopped; every record measured so far is kept in the "
              "database. Run the same command again to resume.", file=sys.stderr)
        raise SystemExit(130) from None


def _check_not_busy(shares: tuple[Share, ...]) -> None:
    """On this machine, fail at once if another run holds what every share needs."""
    problems = [share.backend.busy_here(share) for share in shares]
    if all(problems):
        raise UserError(f"cannot start: {problems[0]}")


def _forget(plan: TunePlan, say: Callable[[str], None] | None) -> None:
    """--fresh, once workers stand ready: delete the model's records at the planned shares."""
    if not plan.request.fresh:
        return
    with Store(plan.request.db_url) as store:
        deleted = sum(store.delete_records(key, shash)
                      for key, shash in slices_of(plan.tasks, plan.share_targets))
    if say:
        say(f"--fresh: deleted {deleted} earlier records of this model")


def measure(plan: TunePlan) -> list[MeasuredShare]:
    """The tuned model run at each share, beside TVM's default and onnxruntime (in fresh
    processes: the model must be one they can load by name)."""
    request = plan.request
    assert isinstance(request.model, ModelSpec), "a model loaded here has no name to pass on"
    return measure_shares(request.model, request.target.name, list(request.shares),
                          request.db_url)
