"""Start a real `tunesvc serve` process on a free port and wait until it serves."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass

import tritonclient.http as triton

from tunesvc.serving.client import listening_address

READY_TIMEOUT_SEC = 600


@dataclass
class Server:
    process: subprocess.Popen
    url: str  # host:port, as tritonclient takes it

    def client(self) -> triton.InferenceServerClient:
        return triton.InferenceServerClient(self.url, network_timeout=120)

    def stop(self) -> str:
        """SIGTERM, wait, and return everything it printed."""
        if self.process.poll() is None:
            self.process.terminate()
        out, _ = self.process.communicate(timeout=120)
        return out


def start_server(args: list[str], env: dict[str, str]) -> Server:
    """`tunesvc serve ARGS --port 0`, returned once every model is ready."""
    process = subprocess.Popen([sys.executable, "-m", "tunesvc", "serve", *args, "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=env)
    assert process.stdout is not None
    line = process.stdout.readline()
    address = listening_address(line)
    if address is None:
        rest = process.communicate(timeout=60)[0]
        raise AssertionError(f"server did not start: {line}{rest}")
    server = Server(process, f"{address[0]}:{address[1]}")
    wait_ready(server)
    return server


def wait_ready(server: Server, model: str | None = None) -> None:
    client, deadline = server.client(), time.monotonic() + READY_TIMEOUT_SEC
    while time.monotonic() < deadline:
        assert server.process.poll() is None, "server exited while loading"
        ready = client.is_model_ready(model) if model else client.is_server_ready()
        if ready:
            return
        time.sleep(0.2)
    raise AssertionError(f"not ready within {READY_TIMEOUT_SEC} s")
