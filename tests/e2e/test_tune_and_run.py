"""End to end, for real: tune zoo:mlp at two CPU shares on a local Ray, then run it.

One tuning run (the `tuned_mlp` fixture) serves every test here.
"""

from __future__ import annotations

import json
import shutil
import sqlite3

import numpy as np
import pytest
import tvm

from schedules_db import SliceKey, Store
from schedules_db.inventory import summaries
from tests.conftest import SHARES, TRIALS, TunedDatabase, tunesvc
from tunesvc.models.inputs import sample_inputs
from tunesvc.evaluation.reference import reference_outputs
from tunesvc.evaluation.run import OperatorReport, RunReport
from tunesvc.runtime.timing import RoundRatios
from tunesvc.runtime.tuned import load, records_for_other_targets
from tests.shares.test_targets import other_isa_target
from schedules_db.targetkey import target_json, target_key

pytestmark = pytest.mark.slow
MLP_TASKS = 2


def test_tune_prints_progress_and_a_per_share_table(tuned_mlp: TunedDatabase) -> None:
    lines = tuned_mlp.stdout.splitlines()
    progress = [line for line in lines if line.startswith("[")]
    assert len(progress) == MLP_TASKS * len(SHARES)
    assert all("FAILED" not in line and f"{TRIALS} trials" in line for line in progress)
    table = {row.split()[0]: row.split() for row in _table_after(lines, "tasks tuned")}
    assert set(table) == {f"cpu:{share}%" for share in SHARES}
    for row in table.values():
        assert row[1:4] == [str(MLP_TASKS), "0", str(MLP_TASKS * TRIALS)]
        assert float(row[4]) > 0  # trials per minute
        assert row[-1].endswith("x")  # speedup of tuned over untuned
    measured = _table_after(lines, "measured: tuned")
    assert [row.split()[0] for row in measured] == [f"cpu:{share}%" for share in SHARES]
    assert all("than onnxruntime" in row for row in measured)


def _table_after(lines: list[str], header: str) -> list[str]:
    """The rows of the table whose header line contains `header`."""
    start = next(i for i, line in enumerate(lines) if header in line) + 2
    rows = []
    for line in lines[start:]:
        if not line.strip():
            break
        rows.append(line)
    return rows


def test_records_are_tagged_with_their_share(tuned_mlp: TunedDatabase) -> None:
    slices = summaries(Store(tuned_mlp.url))
    by_share: dict[int, list] = {}
    for row in slices:
        by_share.setdefault(row.share_percent, []).append(row)
    assert sorted(by_share) == list(SHARES)
    for rows in by_share.values():
        assert len(rows) == MLP_TASKS
        assert all(row.records == TRIALS and row.best_run_sec > 0 for row in rows)


def test_run_uses_the_exact_share_and_matches_onnxruntime(tuned_mlp: TunedDatabase) -> None:
    model = load("zoo:mlp", target="cpu", share=50, db=tuned_mlp.url)
    assert [s.lookup.choice.rule for s in model.sources] == ["exact"] * MLP_TASKS
    assert all(s.lookup.record.share_percent == 50 for s in model.sources)
    inputs = sample_inputs(model.model)
    np.testing.assert_allclose(model(*inputs)[0], reference_outputs(model.model, inputs)[0],
                               rtol=1e-4, atol=1e-4)


def test_cpu_kernels_read_their_weights_prepacked(tuned_mlp: TunedDatabase) -> None:
    """Each tuned CPU kernel lays its weights out for itself (a layout rewrite in its trace,
    stored and read back); the compiled model packs them once and still matches."""
    model = load("zoo:mlp", target="cpu", share=100, db=tuned_mlp.url)
    traces = [json.loads(s.lookup.record.trace_json) for s in model.sources]
    assert all(any(inst[0] == "TransformLayout" for inst in trace[0]) for trace in traces)
    inputs = sample_inputs(model.model)
    np.testing.assert_allclose(model(*inputs)[0], reference_outputs(model.model, inputs)[0],
                               rtol=1e-4, atol=1e-4)


def test_untuned_share_falls_back_to_the_nearest(tuned_mlp: TunedDatabase) -> None:
    model = load("zoo:mlp", target="cpu", share=75, db=tuned_mlp.url)
    assert {(s.lookup.choice.rule, s.lookup.choice.chosen_percent) for s in model.sources} == {
        ("nearest", 50)}


def test_compiled_library_is_cached_and_keyed_by_records(tuned_mlp: TunedDatabase,
                                                         tmp_path) -> None:
    first = load("zoo:mlp", target="cpu", share=50, db=tuned_mlp.url)
    again = load("zoo:mlp", target="cpu", share=50, db=tuned_mlp.url)
    assert again.cache_hit and again.library_path == first.library_path
    untuned = load("zoo:mlp", target="cpu", share=50, db=f"sqlite:///{tmp_path / 'empty.sqlite'}")
    assert {s.lookup.choice.rule for s in untuned.sources} == {"none"}
    assert untuned.library_path != first.library_path


def test_the_cache_tells_apart_records_with_the_same_id(tuned_mlp: TunedDatabase,
                                                       tmp_path) -> None:
    """Record ids repeat across databases (every new SQLite file counts from 1): a copy
    whose chosen record holds another schedule under the same id gets its own library."""
    first = load("zoo:mlp", target="cpu", share=50, db=tuned_mlp.url)
    chosen = next(s.lookup.record for s in first.sources if s.lookup.record is not None)
    copy = tmp_path / "same-ids.sqlite"
    shutil.copy(tuned_mlp.url.removeprefix("sqlite:///"), copy)
    with sqlite3.connect(copy) as db:
        other = db.execute("SELECT trace_json FROM tuning_records WHERE workload_id = "
                           "(SELECT workload_id FROM tuning_records WHERE id = ?) AND "
                           "trace_json != ? LIMIT 1", (chosen.id, chosen.trace_json)).fetchone()
        assert other is not None
        db.execute("UPDATE tuning_records SET trace_json = ? WHERE id = ?", (other[0], chosen.id))
    again = load("zoo:mlp", target="cpu", share=50, db=f"sqlite:///{copy}")
    same = next(s.lookup.record for s in again.sources if s.lookup.record is not None)
    assert same.id == chosen.id and same.trace_json != chosen.trace_json
    assert not again.cache_hit and again.library_path != first.library_path


def test_cli_run_json_and_db_commands(tuned_mlp: TunedDatabase, tunesvc_env: dict) -> None:
    done = tunesvc("run", "zoo:mlp", "--share", "50", "--runs", "5", "--json",
                   "--db", tuned_mlp.url, env=tunesvc_env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["share"] == "cpu:50%" and report["agreement_ok"]
    assert report["median_sec"] > 0 and report["p90_sec"] >= report["median_sec"]
    host_cpu = tvm.get_global_func("target.llvm_get_system_cpu")()
    assert json.loads(report["target"])["mcpu"] == host_cpu and report["isa"].startswith(host_cpu)
    comparison = report["comparison"]
    assert comparison["onnxruntime"]["median_sec"] > 0 and comparison["onnxruntime_threads"] == 1
    assert comparison["tvm_default"]["median_sec"] > 0
    # the clock is interleaved: the ratio is the median of per-round ratios, with spread
    ratio = comparison["ratio_vs_reference"]
    assert comparison["rounds"] == ratio["rounds"] == 10
    assert ratio["low"] <= ratio["median"] <= ratio["high"]
    assert comparison["speedup_vs_onnxruntime"] == pytest.approx(1 / ratio["median"])
    assert [op["rule"] for op in report["operators"]] == ["exact"] * MLP_TASKS
    typed = RunReport.from_json(done.stdout)  # what `tune --compare` reads back, typed
    assert typed.comparison.ratio_vs_reference == RoundRatios(**ratio)
    assert typed.comparison.onnxruntime.samples_sec == tuple(comparison["onnxruntime"]["samples_sec"])
    assert typed.operators[0] == OperatorReport(**report["operators"][0])
    records = json.loads(tunesvc("db", "records", "--json", "--db", tuned_mlp.url,
                                 env=tunesvc_env).stdout)
    assert len(records) == MLP_TASKS * len(SHARES)
    stats = tunesvc("db", "stats", "--db", tuned_mlp.url, env=tunesvc_env).stdout
    assert "cpu:50%, cpu:100%" in stats and f"{MLP_TASKS * len(SHARES) * TRIALS} (" in stats


def test_records_of_another_instruction_set_are_not_applied(tuned_mlp: TunedDatabase,
                                                            tmp_path) -> None:
    """The tuned records, copied under the key of another ISA, are never used here, and
    the run says which records it could not use and why."""
    here = load("zoo:mlp", target="cpu", share=50, db=tuned_mlp.url)
    source = Store(tuned_mlp.url)
    copy_url = f"sqlite:///{tmp_path / 'other-isa.sqlite'}"
    copy = Store(copy_url)
    other_key = target_key(target_json(tvm.target.Target(other_isa_target())))
    for share in SHARES:
        key = SliceKey(target_key(target_json(here.target)), "llvm", "cpu", share)
        for record in source.all_records(key):
            copy.ensure_workload(record.workload_shash,
                                 str(source.workload_mod_json(record.workload_shash)))
            copy.add_record(SliceKey(other_key, "llvm", "cpu", share), _as_new(record))
    elsewhere = load("zoo:mlp", target="cpu", share=50, db=copy_url)
    assert {s.lookup.choice.rule for s in elsewhere.sources} == {"none"}
    (other,) = records_for_other_targets(elsewhere, copy_url)
    assert other.target_key == other_key and other.operators == MLP_TASKS
    assert "this run is for" in other.reason


def _as_new(record):  # type: ignore[no-untyped-def]
    from schedules_db import NewRecord

    return NewRecord(record.workload_shash, record.target_json, record.trace_json,
                     record.run_secs, record.args_info_json, record.worker)
