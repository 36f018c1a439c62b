"""`tunesvc serve` for real: a server process, one process per model held to its own core,
called through tritonclient.http (the Triton client) and through plain HTTP requests.

Small models: zoo:mlp (kernels tuned at 50% by the session's tuning) and zoo:convnet at a
size whose TVM default schedule takes some milliseconds a call (so a queue can fill).
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import time

import numpy as np
import pytest
import requests
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests.serving_helpers import Server, start_server, wait_ready
from tunesvc.models.sources import load_model
from tunesvc.serving.client import binary_request
from tunesvc.evaluation.reference import reference_outputs

SLOW_SHAPE = (1, 16, 192, 192)
DRAIN_SHAPE = (1, 16, 384, 384)  # several calls take longer than the test waits to signal


@pytest.fixture(scope="module")
def server(tuned_mlp, tunesvc_env) -> Server:  # type: ignore[no-untyped-def]
    started = start_server(["mlp=zoo:mlp@50", "conv=zoo:convnet@50", "--db", tuned_mlp.url,
                            "--input-shape", "conv/input:" + "x".join(map(str, SLOW_SHAPE)),
                            "--queue-size", "2", "--max-request-mb", "4"], tunesvc_env)
    yield started
    started.stop()


def _infer(client: triton.InferenceServerClient, model: str, array: np.ndarray,
           binary: bool = True) -> np.ndarray:
    given = triton.InferInput("input", list(array.shape), "FP32")
    given.set_data_from_numpy(array, binary_data=binary)
    result = client.infer(model, [given])
    return result.as_numpy(result.get_response()["outputs"][0]["name"])


def _expected(source: str, shape: tuple[int, ...], array: np.ndarray) -> np.ndarray:
    return reference_outputs(load_model(source, {"input": shape}), [array])[0]


def _mlp_input() -> np.ndarray:
    return np.random.default_rng(1).standard_normal((8, 64)).astype("float32")


def test_both_models_answer_through_tritonclient_and_match_onnxruntime(server: Server) -> None:
    client = server.client()
    assert client.is_server_live() and client.is_server_ready()
    meta = client.get_model_metadata("mlp")
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [8, 64]}]
    assert "at 50% (exact share)" in meta["parameters"]["kernels"]
    conv_meta = client.get_model_metadata("conv")
    assert {meta["parameters"]["cores"], conv_meta["parameters"]["cores"]} == {"0", "1"}
    x = _mlp_input()
    np.testing.assert_allclose(_infer(client, "mlp", x), _expected("zoo:mlp", (8, 64), x),
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(_infer(client, "mlp", x, binary=False),
                               _expected("zoo:mlp", (8, 64), x), rtol=1e-4, atol=1e-4)
    image = np.random.default_rng(2).standard_normal(SLOW_SHAPE).astype("float32")
    np.testing.assert_allclose(_infer(client, "conv", image),
                               _expected("zoo:convnet", SLOW_SHAPE, image), rtol=1e-3, atol=1e-3)


def _post(server: Server, model: str, body: bytes | dict,
          headers: dict[str, str] | None = None) -> requests.Response:
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    return requests.post(f"http://{server.url}/v2/models/{model}/infer", data=data,
                         headers=headers, timeout=120)


def _post_binary(server: Server, model: str, array: np.ndarray) -> requests.Response:
    """An infer request with the binary-tensor extension, as plain HTTP."""
    body, headers = binary_request({"input": array})
    return _post(server, model, body, headers)


def _request(shape: list[int], datatype: str = "FP32", name: str = "input") -> dict:
    return {"inputs": [{"name": name, "shape": shape, "datatype": datatype,
                        "data": [0.5] * int(np.prod(shape))}]}


@pytest.mark.parametrize("model, body, status, says", [
    ("mlp", b"{not json", 400, "malformed JSON"),
    ("nosuch", _request([8, 64]), 404, "unknown model 'nosuch'"),
    ("mlp", _request([8, 64], name="x"), 400, "has no input 'x'"),
    ("mlp", _request([4, 64]), 400, "has shape [8, 64]"),
    ("mlp", _request([8, 64], datatype="INT64"), 400, "is FP32, got 'INT64'"),
    ("mlp", b"x" * (5 << 20), 413, "over the server's limit"),
])
def test_bad_request_gets_one_line_and_the_server_goes_on(server: Server, model: str,
                                                          body: bytes | dict, status: int,
                                                          says: str) -> None:
    answer = _post(server, model, body)
    assert answer.status_code == status
    error = answer.json()["error"]
    assert says in error and "\n" not in error
    x = _mlp_input()
    np.testing.assert_allclose(_infer(server.client(), "mlp", x),
                               _expected("zoo:mlp", (8, 64), x), rtol=1e-4, atol=1e-4)


def test_full_queue_answers_503_with_retry_after(server: Server) -> None:
    image = np.ones(SLOW_SHAPE, dtype="float32")
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda _: _post_binary(server, "conv", image), range(12)))
    statuses = [a.status_code for a in answers]
    assert set(statuses) <= {200, 503} and 200 in statuses and 503 in statuses, statuses
    full = next(a for a in answers if a.status_code == 503)
    assert full.headers["Retry-After"] == "1" and "queue full" in full.json()["error"]
    metrics = requests.get(f"http://{server.url}/metrics", timeout=10).text
    assert 'tunesvc_requests_total{model="conv",status="503"}' in metrics
    assert 'tunesvc_queue_seconds_count{model="conv"}' in metrics


def test_killed_model_fails_fast_others_serve_and_it_comes_back(server: Server) -> None:
    client = server.client()
    pid = client.get_model_metadata("conv")["parameters"]["pid"]
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)  # the server notices at once: the process's sentinel fires
    start = time.monotonic()
    answer = _post_binary(server, "conv", np.ones(SLOW_SHAPE, dtype="float32"))
    assert answer.status_code == 503 and time.monotonic() - start < 2
    assert answer.headers["Retry-After"] == "1"
    assert not client.is_model_ready("conv")
    x = _mlp_input()
    np.testing.assert_allclose(_infer(client, "mlp", x), _expected("zoo:mlp", (8, 64), x),
                               rtol=1e-4, atol=1e-4)
    wait_ready(server, "conv")
    assert client.get_model_metadata("conv")["parameters"]["pid"] != pid
    image = np.ones(SLOW_SHAPE, dtype="float32")
    np.testing.assert_allclose(_infer(client, "conv", image),
                               _expected("zoo:convnet", SLOW_SHAPE, image), rtol=1e-3, atol=1e-3)


def test_sigterm_lets_requests_in_flight_finish(tunesvc_env) -> None:  # type: ignore[no-untyped-def]
    started = start_server(["conv=zoo:convnet@50", "--queue-size", "16",
                            "--input-shape", "input:" + "x".join(map(str, DRAIN_SHAPE))],
                           tunesvc_env)
    image = np.ones(DRAIN_SHAPE, dtype="float32")
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(lambda: (_post_binary(started, "conv", image), time.monotonic()))
                   for _ in range(6)]
        time.sleep(0.3)  # all six are in the server's queue or running
        signalled = time.monotonic()
        started.process.send_signal(signal.SIGTERM)
        answers = [f.result() for f in futures]
    assert [a.status_code for a, _ in answers] == [200] * 6
    assert max(done for _, done in answers) > signalled  # some finished after SIGTERM
    out = started.stop()
    assert started.process.returncode == 0, out
    assert "stopping" in out and "stopped" in out
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://{started.url}/v2/health/live", timeout=5)


def test_unknown_output_name_is_refused(server: Server) -> None:
    given = triton.InferInput("input", [8, 64], "FP32")
    given.set_data_from_numpy(_mlp_input())
    with pytest.raises(InferenceServerException, match="has no output 'nope'"):
        server.client().infer("mlp", [given], outputs=[triton.InferRequestedOutput("nope")])
