"""Which models use which workloads, and under which task names.

Tuning registers each model it plans (name, fingerprint, and per task: workload, name,
uses), so the database can list records by model and task name, delete one model's
records, and tell a model whose operators were tuned for another. A workload shared by
two models is one workload with two names.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from schedules_db.records import SliceKey
from schedules_db.schema import ModelRow, ModelTaskRow, WorkloadRow
from schedules_db.store import Store, retry_once_on_conflict, workload_id_of


@dataclass(frozen=True)
class ModelTask:
    """One task of a registered model."""

    model: str
    task_name: str
    uses: int
    workload_shash: str


@dataclass(frozen=True)
class TaskToRegister:
    workload_shash: str
    workload_json: str  # MetaSchedule's JSON of the workload, stored if it is new
    task_name: str
    uses: int


def register_model(store: Store, name: str, fingerprint: str,
                   tasks: list[TaskToRegister]) -> None:
    """Record that model `name` (`fingerprint`) uses these workloads; idempotent."""

    def write() -> None:
        with store.session() as session:
            model = session.scalar(select(ModelRow).where(ModelRow.fingerprint == fingerprint))
            if model is None:
                model = ModelRow(name=name, fingerprint=fingerprint)
                session.add(model)
                session.flush()
            known = set(session.scalars(select(ModelTaskRow.workload_id)
                                        .where(ModelTaskRow.model_id == model.id)))
            for task in tasks:
                workload_id = workload_id_of(session, task.workload_shash)
                if workload_id is None:
                    row = WorkloadRow(shash=task.workload_shash, mod_json=task.workload_json)
                    session.add(row)
                    session.flush()
                    workload_id = row.id
                if workload_id not in known:
                    session.add(ModelTaskRow(model_id=model.id, workload_id=workload_id,
                                             task_name=task.task_name, uses=task.uses))
                    known.add(workload_id)

    retry_once_on_conflict(write)


def model_tasks(store: Store, name: str | None = None) -> list[ModelTask]:
    """Tasks of every registered model (or of those registered as `name`)."""
    stmt = (select(ModelRow.name, ModelTaskRow.task_name, ModelTaskRow.uses, WorkloadRow.shash)
            .join(ModelTaskRow, ModelTaskRow.model_id == ModelRow.id)
            .join(WorkloadRow, ModelTaskRow.workload_id == WorkloadRow.id)
            .order_by(ModelRow.name, ModelTaskRow.id))
    if name is not None:
        stmt = stmt.where(ModelRow.name == name)
    with store.session() as session:
        return [ModelTask(*row) for row in session.execute(stmt)]


def names_by_workload(store: Store) -> dict[str, list[ModelTask]]:
    """For each registered workload, the (model, task) names it goes by."""
    found: dict[str, list[ModelTask]] = {}
    for task in model_tasks(store):
        found.setdefault(task.workload_shash, []).append(task)
    return found


def tuned_for_other_models(store: Store, key: SliceKey, shashes: list[str],
                           model: str) -> dict[str, list[str]]:
    """Of these workloads, those with records in the slice that other registered models
    use: workload -> those models' names (a second model reuses what the first tuned)."""
    names = names_by_workload(store)
    found: dict[str, list[str]] = {}
    for shash in shashes:
        others = sorted({t.model for t in names.get(shash, []) if t.model != model})
        if others and store.count_records(key, shash) > 0:
            found[shash] = others
    return found
