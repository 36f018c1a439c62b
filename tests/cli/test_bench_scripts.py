"""The benchmark scripts run end to end (small settings, CPU), so their measurement path
works before a GPU or a big database is at hand. Their figures are not asserted."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def test_share_benchmark_on_cpu(tmp_path: Path, tunesvc_env: dict) -> None:
    out = tmp_path / "bench"
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / "bench_gpu_shares.py"), "--target", "cpu",
         "--model", "zoo:mlp", "--shares", "50,100", "--trials-per-task", "2", "--runs", "5",
         "--repeats", "2", "--matmul", "64", "--out", str(out)],
        capture_output=True, text=True, env=tunesvc_env, timeout=1800)
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((out / "results.json").read_text())
    fit = results["share_fit_median_sec"]
    assert set(fit) == {"untuned", "tuned@50", "tuned@100", "onnxruntime"}
    assert all(set(row) == {"50", "100"} and min(row.values()) > 0 for row in fit.values())
    assert [len(cells) for cells in results["share_fit_cells"]["tuned@50"].values()] == [2, 2]
    assert results["throughput"]["ratio"] > 0
    assert [run["trials"] for run in results["throughput"]["runs"]] == [8, 8]  # 2 repeats
    assert (out / "share_fit.png").stat().st_size > 0
    assert set(results["isolation_median_sec"]) == {"50", "100"}
    assert "### Share fit" in (out / "results.md").read_text()


def test_database_benchmark_small(tmp_path: Path) -> None:
    out = tmp_path / "benchmarks.md"
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / "bench_db.py"), "--sizes", "2000", "--backends",
         "sqlite", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "| sqlite | 2,000 |" in out.read_text()


def test_transfer_benchmark_small(tuned_mlp, tmp_path: Path, tunesvc_env: dict) -> None:
    source = tmp_path / "source.sqlite"
    shutil.copy(tuned_mlp.url.removeprefix("sqlite:///"), source)
    dropped = subprocess.run([sys.executable, "-m", "tunesvc", "db", "delete", "--model",
                              "zoo:mlp", "--share", "50", "--yes", "--db", f"sqlite:///{source}"],
                             capture_output=True, text=True, env=tunesvc_env)
    assert dropped.returncode == 0, dropped.stderr
    out = tmp_path / "transfer"
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / "bench_transfer.py"), "--model", "zoo:mlp",
         "--from-db", f"sqlite:///{source}", "--from-share", "100", "--to-share", "50",
         "--budgets", "8", "--runs", "3", "--out", str(out)],
        capture_output=True, text=True, env=tunesvc_env, timeout=1800)
    assert done.returncode == 0, done.stdout + done.stderr
    points = json.loads((out / "results.json").read_text())
    assert [(p["mode"], p["budget"]) for p in points] == [("transfer", 8), ("scratch", 8)]
    assert all(p["trials"] > 0 and p["tuned_median_sec"] > 0 for p in points)
    assert "within 5% of the best from scratch" in (out / "results.md").read_text()


def test_int8_benchmark_small(tmp_path: Path, tunesvc_env: dict) -> None:
    out = tmp_path / "int8"
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / "bench_int8.py"), "zoo:convnet", "--out", str(out),
         "--rounds", "4", "--runs", "10"],
        capture_output=True, text=True, env=tunesvc_env, timeout=1200)
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((out / "results.json").read_text())
    assert set(results["onnxruntime"]) == {"float", "qdq", "dynamic"}
    assert results["onnxruntime"]["float"]["ratio_to_float"] == 1.0
    runs = results["tunesvc_run"]
    assert set(runs) == {"float", "qdq", "dynamic"}
    assert all(run["agreement_ok"] and run["tuned_median_sec"] > 0 for run in runs.values())
    assert "| qdq |" in (out / "results.md").read_text()


def test_pointwise_depthwise_benchmark_small(tmp_path: Path, tunesvc_env: dict) -> None:
    out = tmp_path / "pwdw"
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / "bench_pointwise_depthwise.py"), "--layers",
         "10x8x24s2,9x8x16s1", "--trials", "4", "--out", str(out)],
        capture_output=True, text=True, env=tunesvc_env, timeout=1200)
    assert done.returncode == 0, done.stdout + done.stderr
    layers = json.loads((out / "results.json").read_text())["layers"]
    assert [layer["layer"] for layer in layers] == ["10x8x24s2", "9x8x16s1"]
    # both the two tuned kernels and the fused one compute the pair as numpy does
    assert all(layer["max_abs_error"] < 1e-4 for layer in layers)
    assert all(layer["fused_ms"] > 0 and layer["separate_ms"] > 0 for layer in layers)
    bad = subprocess.run([sys.executable, str(SCRIPTS / "bench_pointwise_depthwise.py"),
                          "--layers", "56x24", "--out", str(out)],
                         capture_output=True, text=True, env=tunesvc_env, timeout=120)
    assert bad.returncode == 2 and "SIZExINxEXPANDEDsSTRIDE" in bad.stderr


def test_search_cost_benchmark_small(tmp_path: Path, tunesvc_env: dict) -> None:
    out = tmp_path / "cost.json"
    script = [sys.executable, str(SCRIPTS / "bench_search_cost.py"), "zoo:convnet"]
    done = subprocess.run(
        script + ["--task", "fused_winograd4_conv2d_add_relu1", "--population", "16",
                  "--out", str(out)], capture_output=True, text=True, env=tunesvc_env, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    (row,) = json.loads(out.read_text())
    assert row["task"] == "fused_winograd4_conv2d_add_relu1"
    assert row["simplify_ms"] > 0 and row["generate_s"] > 0 and row["build_s"] > 0
    bad = subprocess.run(script + ["--task", "no_such_task"], capture_output=True, text=True,
                         env=tunesvc_env, timeout=300)
    assert bad.returncode == 2 and "no such task in zoo:convnet: no_such_task" in bad.stderr


def test_time_to_quality_small(tmp_path: Path, tunesvc_env: dict) -> None:
    """Stock tune_relax and tunesvc on the MLP, each measured as its database stood at a
    minute: stock's clock stops it past its limit and its records are the batches clocked."""
    out = tmp_path / "ttq"
    script = [sys.executable, str(SCRIPTS / "time_to_quality.py")]

    def step(*args: str) -> None:
        done = subprocess.run(script + [*args, "--out", str(out)], capture_output=True,
                              text=True, env=tunesvc_env, timeout=900)
        assert done.returncode == 0, done.stdout + done.stderr

    step("stock", "s", "zoo:mlp", "100", "--minutes", "1")
    step("tunesvc", "t", "zoo:mlp", "100", "--trials", "16", "--minutes", "5")
    step("curve", "--minutes", "5")
    clock = json.loads((out / "s" / "clock.json").read_text())
    assert clock and clock[-1][0] >= 60  # stopped by its clock, past its minute
    lines = (out / "s" / "database_tuning_record.json").read_text().splitlines()
    assert len(lines) == sum(batch[1] for batch in clock) > 0
    points = json.loads((out / "points.json").read_text())
    assert sorted((p["run"], p["engine"], p["minute"]) for p in points) == \
        [("s", "tune_relax", 5.0), ("t", "tunesvc", 5.0)]
    assert all(p["tuned_median_sec"] > 0 and p["ratio_median"] > 0 for p in points)
    assert "| s | tune_relax | zoo:mlp | 100% |" in (out / "results.md").read_text()
