"""The figures `tunesvc report` draws, gathered from the database and from measuring.

Three series per model: end-to-end latency at each share (tuned, TVM default and
onnxruntime, each share measured as `tunesvc run` measures it, in a fresh process held to
the share); the model's latency estimated from the best kernels found so far, against
trials and against time since the share's first record (from record timestamps; a pause
between two tuning runs shows as a gap); and, per operator and share, where its schedule
comes from under the lookup rule and how long it takes.
"""

from __future__ import annotations

from dataclasses import dataclass

from schedules_db import Store
from schedules_db.inventory import record_timeline, summaries
from tunesvc.tuning.estimate import Part, estimated_latency
from tunesvc.pipeline.importer import TaskSet, extract_task_set, to_relax
from tunesvc.models.spec import ModelSpec
from tunesvc.runtime.tuned import choose_records, with_algorithms
from tunesvc.targets import ShareTarget, TargetSpec
from tunesvc.evaluation.at_shares import MeasuredShare, measure_shares
from workers.jobs import TaskSpec
from workers.shares import Share


@dataclass(frozen=True)
class CurvePoint:
    trials: int
    minutes: float
    estimated_ms: float


@dataclass(frozen=True)
class OperatorRow:
    task: str
    uses: int
    share: str
    rule: str  # exact, nearest, none
    from_percent: int | None
    tuned_ms: float | None


@dataclass(frozen=True)
class ModelReport:
    model: str
    target: str
    shares: list[str]
    latency: list[MeasuredShare]
    curves: dict[str, list[CurvePoint]]
    operators: list[OperatorRow]


def gather(model: ModelSpec, target: str, percents: list[int] | None, db_url: str,
           measure: bool = True) -> ModelReport:
    """Everything the report shows; `measure=False` skips the end-to-end measurements."""
    spec = TargetSpec(target)
    whole = spec.at(Share(spec.share_kind, 100))
    task_set = extract_task_set(to_relax(model.load()), whole.target)
    tasks = task_set.tasks
    with Store(db_url) as store:
        shares = [Share(spec.share_kind, p)
                  for p in (percents or _tuned_percents(store, whole, tasks))]
        targets = [whole if s == whole.share else spec.at(s) for s in shares]
        curves = {at.share.label: _curve(store, at, tasks) for at in targets}
    operators = [row for at in targets for row in _operators(at, task_set, db_url)]
    latency = measure_shares(model, target, shares, db_url) if measure else []
    return ModelReport(model.source, target, [s.label for s in shares], latency, curves, operators)


def _tuned_percents(store: Store, at: ShareTarget, tasks: list[TaskSpec]) -> list[int]:
    """The shares this model's tasks were tuned at for `at`'s target (any share of it)."""
    return sorted({r.share_percent for r in summaries(store, shashes=[t.shash for t in tasks],
                                                      target_key=at.key.target_key)})


def _curve(store: Store, at: ShareTarget, tasks: list[TaskSpec]) -> list[CurvePoint]:
    """Estimated model latency after each record, once every task has a measured kernel."""
    timeline = record_timeline(store, at.key, {t.shash: t.weight for t in tasks})
    best: dict[str, float] = {}
    points: list[CurvePoint] = []
    for count, (when, shash, sec) in enumerate(timeline, start=1):
        if sec is not None and sec < best.get(shash, float("inf")):
            best[shash] = sec
        total = estimated_latency(Part(t.group, t.weight, best.get(t.shash), t.shash, t.also)
                                  for t in tasks if t.shash in best or not t.competes_with)
        if total is not None:
            minutes = (when - timeline[0][0]).total_seconds() / 60
            points.append(CurvePoint(count, round(minutes, 3), total * 1e3))
    return points


def _operators(at: ShareTarget, task_set: TaskSet, db_url: str) -> list[OperatorRow]:
    every = choose_records(task_set.tasks, at, db_url)
    _, sources = with_algorithms(every, task_set)
    return [OperatorRow(s.task_name, s.weight, at.share.label, s.lookup.choice.rule,
                        s.lookup.choice.chosen_percent,
                        s.tuned_run_sec * 1e3 if s.tuned_run_sec else None)
            for s in sources]
