"""`tunesvc report` writes its plots from the right data: latency per share, tuning curves
from record timestamps, where each operator's schedule came from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import SHARES, TRIALS, TunedDatabase, tunesvc

pytestmark = pytest.mark.slow
MLP_TASKS = 2


def test_report_plots_hold_the_expected_series(tuned_mlp: TunedDatabase, tmp_path: Path,
                                               tunesvc_env: dict[str, str]) -> None:
    out = tmp_path / "report"
    done = tunesvc("report", "zoo:mlp", "--out", str(out), "--db", tuned_mlp.url,
                   env=tunesvc_env)
    assert done.returncode == 0, done.stderr
    labels = [f"cpu:{share}%" for share in SHARES]
    assert [line.split()[0] for line in done.stdout.splitlines()[:len(SHARES)]] == labels
    for name in ("latency_by_share.png", "tuning_curves.png", "operator_sources.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((out / "report.json").read_text())
    assert data["shares"] == labels
    assert [m["share"]["percent"] for m in data["latency"]] == list(SHARES)
    for measured in data["latency"]:
        assert all(measured[k] > 0 for k in ("tuned_median_sec", "default_median_sec",
                                             "onnxruntime_median_sec"))
    for label in labels:
        curve = data["curves"][label]
        assert curve and curve[-1]["trials"] == MLP_TASKS * TRIALS
        assert [p["trials"] for p in curve] == sorted(p["trials"] for p in curve)
        assert all(p["estimated_ms"] > 0 for p in curve)
        estimates = [p["estimated_ms"] for p in curve]
        assert estimates == sorted(estimates, reverse=True)  # best so far only improves
    assert sorted((o["share"], o["rule"]) for o in data["operators"]) == sorted(
        (label, "exact") for label in labels for _ in range(MLP_TASKS))
    assert "| cpu:50% |" in (out / "report.md").read_text()
