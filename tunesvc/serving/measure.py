"""A model's latency at a share, for the planner: `tunesvc run` in a fresh process held to
the share (the kernels it would be served with, timed as `run` times them)."""

from __future__ import annotations

import json
import subprocess
import sys

from tunesvc.errors import UserError
from tunesvc.serving.plan import ShareLatency
from tunesvc.serving.spec import ServedModel

RUNS = 50
TIMEOUT_SEC = 900


def measure_latency(model: ServedModel, target: str, share: int, db_url: str) -> ShareLatency:
    """Median and p99 of one call at `share` (UserError if `tunesvc run` fails)."""
    shapes = [arg for name, dims in model.input_shapes.items()
              for arg in ("--input-shape", f"{name}:{'x'.join(map(str, dims))}")]
    command = [sys.executable, "-m", "tunesvc", "run", model.source, "--target", target,
               "--share", str(share), "--db", db_url, "--runs", str(RUNS), "--json",
               "--no-reference", *shapes]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_SEC)
    except subprocess.TimeoutExpired:
        raise UserError(f"measuring {model.name} at {share}%: tunesvc run took over "
                        f"{TIMEOUT_SEC} s") from None
    if not done.stdout.strip().startswith("{"):
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"measuring {model.name} at {share}%: {last}")
    latency = json.loads(done.stdout)["latency"]
    return ShareLatency(share, latency["median_sec"] * 1e3, latency["p99_sec"] * 1e3)
