"""A real two-node Ray cluster on loopback (`ray start`), one database for both nodes.

Each node offers one CPU, so the two CPU workers of a 50% share land on different nodes.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import _empty_postgres, tunesvc
from tunesvc.cluster.placement import NODE_UNITS
from workers.cpu_isa import host_cpu_attrs, isa_resource

pytestmark = [pytest.mark.slow, pytest.mark.cluster]
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Cluster:
    gcs_address: str
    dashboard: str
    env: dict[str, str]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ray(*args: str, env: dict[str, str]) -> None:
    done = subprocess.run([str(BIN / "ray"), *args], env=env, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr


def _wait_for_dashboard(cluster: Cluster) -> None:
    deadline = time.monotonic() + 120
    while True:
        probe = tunesvc("jobs", "status", "no-such-job", "--address", cluster.dashboard,
                        env=cluster.env)
        if "no job" in probe.stderr:  # the dashboard answered
            return
        assert time.monotonic() < deadline, f"the Ray dashboard did not come up: {probe.stderr}"
        time.sleep(1)


@pytest.fixture(scope="module")
def cluster(tunesvc_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    # Every node and client shares one token, as on a real cluster with token auth.
    env = {**tunesvc_env, "PATH": f"{BIN}:{os.environ['PATH']}", "RAY_USAGE_STATS_ENABLED": "0",
           "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16)}
    port, dashboard_port = _free_port(), _free_port()
    temp = tmp_path_factory.mktemp("ray")
    # Both nodes declare this machine's CPU, as `tunesvc node-resources` tells users to.
    common = ["--num-cpus=1", "--node-ip-address=127.0.0.1", "--disable-usage-stats",
              f"--resources={json.dumps({_this_cpu(): NODE_UNITS})}"]
    _ray("start", "--head", f"--port={port}", "--include-dashboard=true",
         "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard_port}",
         f"--temp-dir={temp}", *common, env=env)
    try:
        _ray("start", f"--address=127.0.0.1:{port}", *common, env=env)
        found = Cluster(f"127.0.0.1:{port}", f"http://127.0.0.1:{dashboard_port}", env)
        _wait_for_dashboard(found)
        yield found
    finally:
        _ray("stop", "--force", env=env)


def _this_cpu() -> str:
    resource = isa_resource({"kind": "llvm", **host_cpu_attrs()})
    assert resource is not None, "LLVM names no CPU for this host"
    return resource


def _record_nodes(url: str) -> set[str]:
    engine = create_engine(url)
    with engine.connect() as connection:
        workers = connection.execute(text("SELECT DISTINCT worker FROM tuning_records"))
        nodes = {str(worker).rsplit("@", 1)[-1] for (worker,) in workers}
    engine.dispose()
    return nodes


def test_jobs_spread_over_both_nodes_into_one_database(cluster: Cluster,
                                                       postgres_server: str) -> None:
    url = _empty_postgres(postgres_server)
    done = tunesvc("tune", "zoo:mlp", "--shares", "50", "--trials-per-task", "2", "--db", url,
                   "--address", cluster.gcs_address, env=cluster.env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(_record_nodes(url)) == 2


def test_workers_go_only_to_nodes_of_the_targets_cpu(cluster: Cluster, tmp_path: Path) -> None:
    other_cpu = '{"kind": "llvm", "mcpu": "skylake-avx512"}'
    if isa_resource(json.loads(other_cpu)) == _this_cpu():
        pytest.skip("this machine is the other CPU")
    done = tunesvc("tune", "zoo:mlp", "--target", other_cpu, "--shares", "50",
                   "--trials-per-task", "2", "--db", f"sqlite:///{tmp_path / 'db.sqlite'}",
                   "--address", cluster.gcs_address, env=cluster.env)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "no node of this Ray cluster has the target's CPU, skylake-avx512" in done.stderr
    assert _this_cpu() in done.stderr


def _wait_for_status(cluster: Cluster, job_id: str, wanted: set[str]) -> str:
    deadline = time.monotonic() + 600
    while True:
        status = tunesvc("jobs", "status", job_id, "--address", cluster.dashboard,
                         env=cluster.env).stdout.strip()
        if status in wanted:
            return status
        assert time.monotonic() < deadline, f"job {job_id} still {status}"
        time.sleep(2)


def test_submit_follow_and_read_results(cluster: Cluster, postgres_server: str) -> None:
    url = _empty_postgres(postgres_server)
    submitted = tunesvc("submit", "zoo:mlp", "--shares", "50", "--trials-per-task", "2",
                        "--db", url, "--address", cluster.dashboard, env=cluster.env)
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    assert _wait_for_status(cluster, job_id, {"SUCCEEDED", "FAILED"}) == "SUCCEEDED"
    logs = tunesvc("jobs", "logs", job_id, "--address", cluster.dashboard, env=cluster.env)
    assert "cpu:50%" in logs.stdout and "FAILED" not in logs.stdout
    # Ray's own client takes the same entrypoint; the slices are complete, so it returns fast.
    ray_cli = subprocess.run(
        [str(BIN / "ray"), "job", "submit", "--address", cluster.dashboard, "--",
         "tunesvc", "tune", "zoo:mlp", "--shares", "50", "--trials-per-task", "2", "--db", url],
        env=cluster.env, capture_output=True, text=True, timeout=600)
    assert ray_cli.returncode == 0, ray_cli.stdout + ray_cli.stderr
    assert "Nothing to tune" in ray_cli.stdout


def test_stop_a_running_job(cluster: Cluster, postgres_server: str) -> None:
    url = _empty_postgres(postgres_server)
    submitted = tunesvc("submit", "zoo:mlp", "--shares", "50", "--trials-per-task", "500",
                        "--db", url, "--address", cluster.dashboard, env=cluster.env)
    job_id = submitted.stdout.strip()
    _wait_for_status(cluster, job_id, {"RUNNING"})
    stopped = tunesvc("jobs", "stop", job_id, "--address", cluster.dashboard, env=cluster.env)
    assert stopped.returncode == 0 and "stopping" in stopped.stdout
    assert _wait_for_status(cluster, job_id, {"STOPPED", "FAILED", "SUCCEEDED"}) == "STOPPED"
    missing = tunesvc("jobs", "status", "no-such-job", "--address", cluster.dashboard,
                      env=cluster.env)
    assert missing.returncode == 1 and "no job" in missing.stderr
