#!/usr/bin/env python3
"""Do real ONNX models run and match onnxruntime? Each model of a list goes through
`tunesvc run MODEL ARGS --json --no-reference --runs 1` (compiled with TVM's default
schedules, checked against onnxruntime on made-up inputs) in a fresh process, one at a
time, with a time limit.

The list holds one model a line: its path, then the arguments it needs (input shapes,
input values), as a user would give them; `#` starts a comment:

    models/det.onnx --input-shape x:1x3x320x320
    models/vad.onnx --input-shape input:1x512 --input-shape state:2x1x128 --input-value sr=16000

    scripts/real_model_round.py models.txt --out /tmp/round

Writes results.json and results.md to --out after every model. The outcome of a model is
`match`, `differs` (ran, output outside the tolerance), `error` (one line), `traceback`
(a Python traceback reached the terminal: a bug) or `timeout`.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import click

from bench_worth_tuning import _cpu_name  # same folder: run as a script


@dataclass(frozen=True)
class Outcome:
    model: str
    args: str
    outcome: str
    seconds: float
    detail: str  # the error's line, or the max error against the tolerance


def _entries(listing: Path) -> list[tuple[str, list[str]]]:
    entries = []
    for line in listing.read_text().splitlines():
        words = shlex.split(line, comments=True)
        if words:
            entries.append((words[0], words[1:]))
    return entries


def _run_one(model: str, args: list[str], limit_sec: float, home: Path) -> Outcome:
    command = [sys.executable, "-m", "tunesvc", "run", model, *args, "--json",
               "--no-reference", "--runs", "1"]
    started = time.monotonic()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=limit_sec,
                              env={**os.environ, "TUNESVC_HOME": str(home)})
    except subprocess.TimeoutExpired:
        return Outcome(model, shlex.join(args), "timeout", limit_sec, f"over {limit_sec:g} s")
    return _outcome(model, args, done, round(time.monotonic() - started, 1))


def _outcome(model: str, args: list[str], done: subprocess.CompletedProcess,
             seconds: float) -> Outcome:
    if "Traceback" in done.stderr:
        return Outcome(model, shlex.join(args), "traceback", seconds, _last_line(done.stderr))
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        return Outcome(model, shlex.join(args), "error", seconds, _error_line(done.stderr))
    detail = f"max abs error {report['max_abs_error']:.2e}, tolerance {report['tolerance']:.2e}"
    return Outcome(model, shlex.join(args), "match" if report["agreement_ok"] else "differs",
                   seconds, detail)


def _error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("Error")]
    return lines[0] if lines else _last_line(stderr)


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _write(out: Path, outcomes: list[Outcome], command: str) -> None:
    counts = {kind: sum(o.outcome == kind for o in outcomes)
              for kind in ("match", "differs", "error", "traceback", "timeout")}
    meta = {"machine": _cpu_name(), "finished": datetime.now(timezone.utc).isoformat(),
            "command": command, "counts": counts}
    (out / "results.json").write_text(json.dumps(
        {**meta, "models": [asdict(o) for o in outcomes]}, indent=2))
    rows = [f"| {Path(o.model).name} | {o.outcome} | {o.seconds:.0f} s | {o.detail} |"
            for o in outcomes]
    summary = ", ".join(f"{n} {kind}" for kind, n in counts.items())
    (out / "results.md").write_text("\n".join([
        f"{len(outcomes)} models ({summary}); {meta['machine']}, {meta['finished']}",
        f"`{command}`", "", "| model | outcome | time | detail |", "|---|---|---|---|",
        *rows, ""]))


@click.command()
@click.argument("listing", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for results.json and results.md.")
@click.option("--limit", "limit_sec", default=500.0, show_default=True,
              help="Seconds a model may take before it counts as a timeout.")
def main(listing: Path, out: Path, limit_sec: float) -> None:
    """Run every model of LISTING through `tunesvc run` and record how each ends."""
    out.mkdir(parents=True, exist_ok=True)
    command = shlex.join(["scripts/real_model_round.py", str(listing), "--out", str(out)])
    outcomes: list[Outcome] = []
    for model, args in _entries(listing):
        outcomes.append(_run_one(model, args, limit_sec, out / "home"))
        print(f"{outcomes[-1].outcome:9} {outcomes[-1].seconds:6.0f} s  {model}", flush=True)
        _write(out, outcomes, command)


if __name__ == "__main__":
    main()
