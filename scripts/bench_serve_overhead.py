#!/usr/bin/env python3
"""What one request costs beyond the model call: the same compiled model called in-process,
through `tunesvc serve` (KServe v2 over HTTP, binary tensors), and through a Ray Serve
deployment on a local Ray (HTTP, the same tensor bytes). Sequential requests, one at a
time, interleaved in rounds (in-process, tunesvc, Ray Serve, ...) so a slow minute hits all.

    scripts/bench_serve_overhead.py --model zoo:mobilenet_v2 --share 100 --db URL --rounds 10

Ray Serve needs `pip install "ray[serve]"` (not a tunesvc dependency). Prints one JSON
object (and writes it to --out). Run it alone on the machine.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import click
import numpy as np
import requests

from tunesvc.serving.client import binary_request, listening_address

PER_ROUND = 20


def kserve_call(url: str, model: str, array: np.ndarray):  # type: ignore[no-untyped-def]
    body, headers = binary_request({"input": array})
    session = requests.Session()

    def call() -> None:
        answer = session.post(f"{url}/v2/models/{model}/infer", data=body, headers=headers)
        answer.raise_for_status()

    return call


def ray_serve_call(model: str, share: int, db: str, array: np.ndarray):  # type: ignore[no-untyped-def]
    import ray
    from ray import serve

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)

    @serve.deployment(ray_actor_options={"num_cpus": 0})
    class Model:
        def __init__(self) -> None:
            from tunesvc.runtime.tuned import load

            self.tuned = load(model, "cpu", share, db)

        async def __call__(self, request) -> bytes:  # type: ignore[no-untyped-def]
            data = np.frombuffer(await request.body(), dtype="float32").reshape(array.shape)
            return self.tuned(data)[0].tobytes()

    serve.run(Model.bind(), route_prefix="/m")
    session = requests.Session()
    body = array.tobytes()

    def call() -> None:
        session.post("http://127.0.0.1:8000/m", data=body).raise_for_status()

    return call


@click.command()
@click.option("--model", default="zoo:mobilenet_v2", show_default=True)
@click.option("--share", default=100, show_default=True)
@click.option("--db", required=True)
@click.option("--rounds", default=10, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=None)
def main(model: str, share: int, db: str, rounds: int, out: Path | None) -> None:
    from tunesvc.models.sources import load_model
    from tunesvc.models.inputs import sample_inputs
    from tunesvc.runtime.tuned import load
    from tunesvc.runtime.timing import time_interleaved

    array = sample_inputs(load_model(model))[0]
    tuned = load(model, "cpu", share, db)
    server = subprocess.Popen([sys.executable, "-m", "tunesvc", "serve", f"m={model}@{share}",
                               "--db", db, "--port", "8100"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    host, port = listening_address(server.stdout.readline())
    url = f"http://{host}:{port}"
    while requests.get(f"{url}/v2/health/ready").status_code != 200:
        time.sleep(0.5)
    calls = {"in-process": lambda: tuned(array), "tunesvc serve": kserve_call(url, "m", array),
             "Ray Serve": ray_serve_call(model, share, db, array)}
    by_round = time_interleaved(calls, rounds * PER_ROUND, rounds)
    samples = {name: [t for one in times for t in one] for name, times in by_round.items()}
    server.terminate()
    base = statistics.median(samples["in-process"])
    result = {"model": model, "share": share, "requests_each": rounds * PER_ROUND,
              "median_ms": {n: statistics.median(s) * 1e3 for n, s in samples.items()},
              "p99_ms": {n: float(np.percentile(s, 99)) * 1e3 for n, s in samples.items()},
              "overhead_ms": {n: (statistics.median(s) - base) * 1e3 for n, s in samples.items()}}
    text = json.dumps(result, indent=2)
    print(text)
    if out is not None:
        out.write_text(text + "\n")


if __name__ == "__main__":
    main()
