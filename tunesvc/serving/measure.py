"""A model's latency at a share, for the planner, measured as it will be served: the model
alone in `tunesvc serve` at that share (its kernels, its own cores), called over HTTP one
request at a time with a pause between requests, so each call meets the caches as a
lightly loaded server does (back-to-back calls, as `tunesvc run` times them, keep the
weights warm and read 1.5-2x faster here than a served call)."""

from __future__ import annotations

import http.client
import json
import statistics
import subprocess
import sys
import time

import numpy as np

from tunesvc.errors import UserError
from tunesvc.serving.client import binary_request, listening_address, made_up_inputs
from tunesvc.serving.plan import ShareLatency
from tunesvc.serving.spec import ServedModel
from tunesvc.models.spec import ModelSpec

REQUESTS = 40
PAUSE_SEC = 0.05
READY_TIMEOUT_SEC = 900


def measure_latency(model: ServedModel, target: str, share: int, db_url: str) -> ShareLatency:
    """Median and p99 of a served request at `share` (UserError if it cannot be served)."""
    shapes = ModelSpec(model.source, model.input_shapes).argv()[1:]  # the options only
    server = subprocess.Popen(
        [sys.executable, "-m", "tunesvc", "serve", f"{model.name}={model.source}@{share}",
         "--target", target, "--db", db_url, "--port", "0", "--engine", model.engine, *shapes],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        host, port = _address(server, model, share)
        connection = http.client.HTTPConnection(host, port, timeout=READY_TIMEOUT_SEC)
        _wait_ready(connection, server, model, share)
        body, headers = _request(connection, model.name)
        seconds = [_timed_request(connection, model.name, body, headers)
                   for _ in range(REQUESTS)]
    finally:
        server.terminate()
        server.communicate(timeout=120)
    return ShareLatency(share, statistics.median(seconds) * 1e3,
                        float(np.percentile(seconds, 99)) * 1e3)


def _address(server: subprocess.Popen, model: ServedModel, share: int) -> tuple[str, int]:
    line = server.stdout.readline() if server.stdout else ""
    address = listening_address(line)
    if address is None:
        raise UserError(f"measuring {model.name} at {share}%: {line.strip() or 'no server'}")
    return address


def _wait_ready(connection: http.client.HTTPConnection, server: subprocess.Popen,
                model: ServedModel, share: int) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SEC
    while time.monotonic() < deadline:
        if server.poll() is not None:
            last = (server.communicate()[0].strip().splitlines() or ["it exited"])[-1]
            raise UserError(f"measuring {model.name} at {share}%: {last}")
        connection.request("GET", f"/v2/models/{model.name}/ready")
        answer = connection.getresponse()
        answer.read()
        if answer.status == 200:
            return
        time.sleep(0.5)
    raise UserError(f"measuring {model.name} at {share}%: not ready in {READY_TIMEOUT_SEC} s")


def _request(connection: http.client.HTTPConnection, name: str) -> tuple[bytes, dict[str, str]]:
    """A binary-tensor infer request of made-up inputs of the model's shapes."""
    connection.request("GET", f"/v2/models/{name}")
    answer = connection.getresponse()
    return binary_request(made_up_inputs(json.loads(answer.read())))


def _timed_request(connection: http.client.HTTPConnection, name: str, body: bytes,
                   headers: dict[str, str]) -> float:
    time.sleep(PAUSE_SEC)
    start = time.perf_counter()
    connection.request("POST", f"/v2/models/{name}/infer", body=body, headers=headers)
    answer = connection.getresponse()
    answer.read()
    if answer.status != 200:
        raise UserError(f"measuring {name}: the server answered {answer.status}")
    return time.perf_counter() - start
