"""Telling the database which workloads a model uses, under which task names."""

from __future__ import annotations

from schedules_db import Store
from schedules_db.model_registry import TaskToRegister, register_model
from schedules_db.ms_adapter import workload_json
from workers.jobs import TaskSpec


def register_tasks(db_url: str, model_name: str, fingerprint: str,
                   tasks: list[TaskSpec]) -> None:
    """Record model `model_name` (`fingerprint`) and its tasks' workloads and names."""
    with Store(db_url) as store:
        register_model(store, model_name, fingerprint,
                       [TaskToRegister(t.shash, workload_json(t.mod), t.name, t.weight)
                        for t in tasks])
