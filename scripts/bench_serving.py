#!/usr/bin/env python3
"""Do controlled slices pay? Two models served side by side on this machine, under an
open-loop load (Poisson arrivals, bounded in time, loopback only), in four arrangements:

  tunesvc controlled      each model on its own cores, kernels tuned at its share
  tunesvc uncontrolled    both on every core (--overlap), kernels tuned at 100%
  onnxruntime controlled / uncontrolled: the same two arrangements with onnxruntime

All four servers run at once (idle ones take no CPU); at each rate the arrangements are
loaded in turn, A B C D then D C B A. Per arrangement and offered rate (the same for each
model): throughput, p50 and p99 of
the answered requests, refused (503) and failed requests, and per model the highest rate
whose p99 stays under its objective. With --config it instead serves a `tunesvc plan`
config at each model's objective rate and says whether each objective holds.

    scripts/bench_serving.py --db sqlite:////tmp/w/serve.sqlite --models resnet18=zoo:resnet18 \\
        --models mobilenet_v2=zoo:mobilenet_v2 --p99 resnet18=100 --p99 mobilenet_v2=50 \\
        --rates 5,10,20,30 --seconds 20 --out /tmp/w/serving

Writes results.json and results.md to --out after every point. Run it alone on the machine:
the load generator shares its cores with the servers, as it would any client on the box.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import aiohttp
import click

from serving_load import Level, run_levels  # same folder: run as a script
from tunesvc.serving.client import listening_address



def arrangements(models: dict[str, str]) -> list[tuple[str, list[str]]]:
    def at(share: int) -> list[str]:
        return [f"{name}={source}@{share}" for name, source in models.items()]

    half = 100 // len(models)
    return [("tunesvc controlled", at(half)),
            ("tunesvc uncontrolled", at(100) + ["--overlap"]),
            ("onnxruntime controlled", at(half) + ["--engine", "onnxruntime"]),
            ("onnxruntime uncontrolled", at(100) + ["--overlap", "--engine", "onnxruntime"])]


def start(args: list[str], db: str) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen([sys.executable, "-m", "tunesvc", "serve", *args, "--db", db,
                                "--port", "0", "--queue-size", "64"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = process.stdout.readline()
    address = listening_address(line)
    if address is None:
        raise SystemExit(f"server did not start: {line}{process.communicate()[0]}")
    return process, f"http://{address[0]}:{address[1]}"


async def wait_ready(url: str, process: subprocess.Popen) -> None:
    async with aiohttp.ClientSession() as session:
        while True:
            if process.poll() is not None:
                raise SystemExit(f"server exited: {process.communicate()[0]}")
            try:
                async with session.get(f"{url}/v2/health/ready") as answer:
                    if answer.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.5)


def serve_and_load(args: list[str], db: str, arrangement: str, rates: dict[str, list[float]],
                   seconds: float) -> list[Level]:
    process, url = start(args, db)
    try:
        asyncio.run(wait_ready(url, process))
        return asyncio.run(run_levels(url, arrangement, rates, seconds))
    finally:
        process.terminate()
        process.communicate(timeout=120)


def interleaved(chosen: list[tuple[str, list[str]]], db: str, models: list[str],
                steps: list[float], seconds: float, passes: int) -> list[Level]:
    """Every arrangement's server started at once (an idle one takes no CPU), then at each
    rate the arrangements loaded in turn, A B C D then D C B A, so a slow minute of the
    machine hits them alike; each (arrangement, rate) pools the samples of its passes."""
    servers = {label: start(args, db) for label, args in chosen}
    pooled: dict[tuple[str, str, float], Level] = {}
    try:
        for process, url in servers.values():
            asyncio.run(wait_ready(url, process))
        for step in steps:
            for turn in range(passes):
                for label in (list(servers) if turn % 2 == 0 else list(servers)[::-1]):
                    url = servers[label][1]
                    for level in asyncio.run(run_levels(url, label, {m: [step] for m in models},
                                                        seconds)):
                        _pool(pooled, level)
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.communicate(timeout=120)
    return list(pooled.values())


def _pool(pooled: dict[tuple[str, str, float], Level], level: Level) -> None:
    key = (level.arrangement, level.model, level.offered_rate)
    if key not in pooled:
        pooled[key] = level
        return
    into = pooled[key]
    into.seconds += level.seconds
    into.answered += level.answered
    into.refused += level.refused
    into.failed += level.failed
    into.latencies_ms += level.latencies_ms


def highest_meeting(rows: list[dict], p99: dict[str, float]) -> list[dict]:
    """Per arrangement and model: the highest offered rate at which p99 met its objective
    and nothing was refused or failed."""
    best: dict[tuple[str, str], float] = {}
    for row in rows:
        key = (row["arrangement"], row["model"])
        ok = (row["p99_ms"] <= p99.get(row["model"], float("inf")) and not row["refused"]
              and not row["failed"])
        best.setdefault(key, 0.0)
        if ok:
            best[key] = max(best[key], row["offered_rate"])
    return [{"arrangement": a, "model": m, "p99_objective_ms": p99.get(m),
             "highest_rate_meeting_it": r} for (a, m), r in best.items()]


def write(out: Path, meta: dict, rows: list[dict], best: list[dict]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({**meta, "levels": rows, "best": best},
                                                 indent=2) + "\n")
    lines = [f"Measured {meta['date']} on {meta['machine']} with `{meta['command']}`.", "",
             "| arrangement | model | offered /s | throughput /s | p50 ms | p99 ms | 503 | failed |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['arrangement']} | {r['model']} | {r['offered_rate']:g} | {r['throughput']:.1f} "
              f"| {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['refused']} | {r['failed']} |" for r in rows]
    lines += ["", "| arrangement | model | p99 objective ms | highest rate meeting it /s |",
              "|---|---|---|---|"]
    lines += [f"| {b['arrangement']} | {b['model']} | {b['p99_objective_ms']} | "
              f"{b['highest_rate_meeting_it']:g} |" for b in best]
    (out / "results.md").write_text("\n".join(lines) + "\n")


def plot(out: Path, rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = sorted({r["model"] for r in rows})
    figure, axes = plt.subplots(1, len(models), figsize=(6 * len(models), 4), squeeze=False)
    for axis, model in zip(axes[0], models):
        for arrangement in dict.fromkeys(r["arrangement"] for r in rows):
            mine = [r for r in rows if r["model"] == model and r["arrangement"] == arrangement]
            axis.plot([r["offered_rate"] for r in mine], [r["p99_ms"] for r in mine], "o-",
                      label=arrangement)
        axis.set(title=f"{model}: p99 against offered load", xlabel="requests/s (each model)",
                 ylabel="p99 latency (ms)", yscale="log")
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out / "serving-latency.png", dpi=110)


def check_plan(config: Path, db: str, seconds: float, out: Path, meta: dict) -> None:
    """Serve a `tunesvc plan` config at each model's objective rate: does each hold?"""
    from tunesvc.serving.config_file import read_config

    models = read_config(config).models
    rates = {m.name: [m.objective.rate] for m in models if m.objective}
    levels = serve_and_load(["--config", str(config)], db, f"plan {config.name}", rates, seconds)
    rows = [lv.summary() for lv in levels]
    objective = {m.name: m.objective.p99_ms for m in models if m.objective}
    for row in rows:
        row["p99_objective_ms"] = objective[row["model"]]
        row["met"] = row["p99_ms"] <= row["p99_objective_ms"] and not row["refused"] + row["failed"]
        print(f"{row['model']}: p99 {row['p99_ms']:.1f} ms against {row['p99_objective_ms']:g} "
              f"at {row['offered_rate']:g}/s: {'met' if row['met'] else 'NOT met'}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "plan-check.json").write_text(json.dumps({**meta, "config": config.read_text(),
                                                     "levels": rows}, indent=2) + "\n")


@click.command()
@click.option("--db", required=True, help="Schedule database holding both models at every share.")
@click.option("--models", "model_args", multiple=True, metavar="NAME=MODEL")
@click.option("--config", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="Instead: serve this `tunesvc plan` config at its objectives' rates.")
@click.option("--p99", "objectives", multiple=True, metavar="NAME=MS", help="p99 objectives.")
@click.option("--rates", default="5,10,20,30", show_default=True, help="Offered rates, each model.")
@click.option("--seconds", default=10.0, show_default=True, help="Length of each load step.")
@click.option("--passes", default=2, show_default=True,
              help="Load steps per arrangement and rate (in alternating order).")
@click.option("--only", default=None, help="Run only the arrangements whose label contains this.")
@click.option("--out", type=click.Path(path_type=Path), required=True)
def main(db: str, model_args: tuple[str, ...], config: Path | None, objectives: tuple[str, ...],
         rates: str, seconds: float, passes: int, only: str | None, out: Path) -> None:
    meta = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": _machine(), "command": " ".join(["scripts/bench_serving.py", *sys.argv[1:]])}
    if config is not None:
        check_plan(config, db, seconds, out, meta)
        return
    models = dict(arg.split("=", 1) for arg in model_args)
    p99 = {name: float(ms) for name, ms in (o.split("=", 1) for o in objectives)}
    steps = [float(r) for r in rates.split(",")]
    chosen = [(label, args) for label, args in arrangements(models) if not only or only in label]
    levels = interleaved(chosen, db, list(models), steps, seconds, passes)
    order = {label: i for i, (label, _) in enumerate(chosen)}
    rows = [lv.summary() for lv in sorted(levels, key=lambda lv: (order[lv.arrangement],
                                                                   lv.model, lv.offered_rate))]
    write(out, meta, rows, highest_meeting(rows, p99))
    plot(out, rows)


def _machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown CPU")
    import os

    return f"{cpu}, {os.cpu_count()} cores"


if __name__ == "__main__":
    main()
