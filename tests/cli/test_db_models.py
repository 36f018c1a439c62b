"""The database knows which models use which workloads: records list by model and task
name, and one model's records can be deleted (after asking)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from schedules_db import Store
from schedules_db.model_registry import TaskToRegister, names_by_workload, register_model
from tests import onnx_graphs
from tests.conftest import SHARES, TRIALS, TunedDatabase, tunesvc

MLP_TASKS = 2


def test_records_name_their_model_and_task(tuned_mlp: TunedDatabase,
                                           tunesvc_env: dict[str, str]) -> None:
    done = tunesvc("db", "records", "--model", "zoo:mlp", "--json", "--db", tuned_mlp.url,
                   env=tunesvc_env)
    rows = json.loads(done.stdout)
    assert len(rows) == MLP_TASKS * len(SHARES)
    assert all(row["tasks"][0]["model"] == "zoo:mlp" and
               row["tasks"][0]["task_name"].startswith("fused_") for row in rows)
    table = tunesvc("db", "records", "--db", tuned_mlp.url, env=tunesvc_env).stdout
    assert "zoo:mlp: fused_" in table
    other = tunesvc("db", "records", "--model", "zoo:resnet18", "--db", tuned_mlp.url,
                    env=tunesvc_env)
    assert other.stdout.startswith("No tuning records of zoo:resnet18")


def test_delete_asks_then_deletes_one_share(tuned_mlp: TunedDatabase, tmp_path: Path,
                                            tunesvc_env: dict[str, str]) -> None:
    copy = tmp_path / "copy.sqlite"
    shutil.copy(tuned_mlp.url.removeprefix("sqlite:///"), copy)
    url = f"sqlite:///{copy}"
    command = [sys.executable, "-m", "tunesvc", "db", "delete", "--model", "zoo:mlp",
               "--share", "50", "--db", url]
    declined = subprocess.run(command, input="n\n", capture_output=True, text=True,
                              env=tunesvc_env)
    assert declined.returncode == 1
    assert f"Delete {MLP_TASKS * TRIALS} records at 50% of {MLP_TASKS} workloads of zoo:mlp?" \
        in declined.stdout
    assert _records(url) == MLP_TASKS * TRIALS * len(SHARES)
    done = tunesvc("db", "delete", "--model", "zoo:mlp", "--share", "50", "--yes", "--db", url,
                   env=tunesvc_env)
    assert done.stdout.strip() == f"Deleted {MLP_TASKS * TRIALS} records at 50%."
    assert _records(url) == MLP_TASKS * TRIALS * (len(SHARES) - 1)
    missing = tunesvc("db", "delete", "--model", "zoo:nothing", "--db", url, env=tunesvc_env)
    assert missing.returncode == 1 and "no model named zoo:nothing" in missing.stderr


def _records(url: str) -> int:
    from schedules_db.inventory import stats

    return stats(Store(url)).records


def test_a_workload_two_models_use_has_both_names(db_url: str) -> None:
    store = Store(db_url)
    shared = TaskToRegister("111", "{}", "fused_dense", 2)
    register_model(store, "a.onnx", "fp-a", [shared, TaskToRegister("222", "{}", "fused_conv", 1)])
    register_model(store, "b.onnx", "fp-b", [TaskToRegister("111", "{}", "dense_b", 1)])
    register_model(store, "a.onnx", "fp-a", [shared])  # again: nothing doubles
    names = names_by_workload(store)
    assert sorted((t.model, t.task_name) for t in names["111"]) == [
        ("a.onnx", "fused_dense"), ("b.onnx", "dense_b")]
    assert [(t.model, t.uses) for t in names["222"]] == [("a.onnx", 1)]


def test_export_reads_in_stock_tvm_and_imports_back(tuned_mlp: TunedDatabase, tmp_path: Path,
                                                    tunesvc_env: dict[str, str]) -> None:
    from tvm.s_tir import meta_schedule as ms

    folder = tmp_path / "ms-db"
    done = tunesvc("db", "export", str(folder), "--share", "100", "--top", "2", "--db",
                   tuned_mlp.url, env=tunesvc_env)
    assert done.stdout.strip() == f"Wrote {2 * MLP_TASKS} records of {MLP_TASKS} workloads " \
                                  f"(cpu:100%) to {folder}."
    stock = ms.database.JSONDatabase(work_dir=str(folder))
    assert len(stock.get_all_tuning_records()) == 2 * MLP_TASKS

    fresh = f"sqlite:///{tmp_path / 'fresh.sqlite'}"
    done = tunesvc("db", "import", str(folder), "--share", "75", "--db", fresh, env=tunesvc_env)
    assert done.stdout.strip() == f"Imported {2 * MLP_TASKS} records from {folder} as cpu:75%."
    from tunesvc.models.inputs import sample_inputs
    from tunesvc.evaluation.reference import reference_outputs
    from tunesvc.runtime.tuned import load

    model = load("zoo:mlp", share=75, db=fresh)
    assert [s.lookup.choice.rule for s in model.sources] == ["exact"] * MLP_TASKS
    inputs = sample_inputs(model.model)
    assert abs(model(*inputs)[0] - reference_outputs(model.model, inputs)[0]).max() < 1e-3


def test_a_second_model_measures_nothing_for_workloads_already_tuned(
        tuned_mlp: TunedDatabase, tmp_path: Path, tunesvc_env: dict[str, str]) -> None:
    copy = tmp_path / "copy.sqlite"
    shutil.copy(tuned_mlp.url.removeprefix("sqlite:///"), copy)
    path = onnx_graphs.mlp_and_a_layer(tmp_path / "mlp_and_a_layer.onnx")
    done = tunesvc("tune", str(path), "--shares", "50", "--trials-per-task", str(TRIALS),
                   "--no-compare", "--json", "--db", f"sqlite:///{copy}", env=tunesvc_env)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["reused"] == [{"share": {"kind": "cpu", "percent": 50}, "tasks": MLP_TASKS,
                              "models": ["zoo:mlp"]}]
    measured = sorted(r["trials_measured"] for r in out["results"])
    assert measured == [0] * MLP_TASKS + [TRIALS]  # only the new layer is tuned
    plain = tunesvc("tune", str(path), "--shares", "50", "--trials-per-task", str(TRIALS),
                    "--no-compare", "-q", "--db", f"sqlite:///{copy}", env=tunesvc_env)
    assert f"cpu:50%: {MLP_TASKS} of {MLP_TASKS + 1} tasks reused, tuned already for " \
           f"zoo:mlp" in plain.stdout
