#!/usr/bin/env python3
"""Does per-share tuning pay? Three measurements, one command, results to JSON and markdown.

1. Share fit: the model tuned at each share (one database per tuned share), then every
   tuned variant plus TVM's default schedules run at every share: a latency matrix
   (median of --runs runs, each run in a fresh process held to its share).
2. Tuning throughput: the same trial budget tuned by one worker at 100% and by
   100/s workers at share s side by side (the share-fit tuning runs themselves): wall
   time, measured trials per minute, and the ratio.
3. Isolation: a compute-bound matmul (TVM default schedule) at every share; latency
   must fall as the share grows if the share is enforced.

    scripts/bench_gpu_shares.py --target gpu --out out/bench          # on a GPU with MPS up
    scripts/bench_gpu_shares.py --target cpu --model zoo:mlp --shares 50,100 \\
        --trials-per-task 4 --runs 10 --out /tmp/bench                # smoke run, no GPU

Every figure comes from `tunesvc tune` / `tunesvc run` subprocesses, the same paths a
user runs; nothing is simulated.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import click
import onnx
from onnx import TensorProto, helper

ISOLATION_MATMUL = 2048  # n for an n x n x n float32 matmul: compute-bound on any GPU


@dataclass(frozen=True)
class TuneRun:
    share: int
    db_url: str
    wall_sec: float
    trials: int

    @property
    def trials_per_minute(self) -> float:
        return 60.0 * self.trials / self.wall_sec


@dataclass(frozen=True)
class Settings:
    target: str
    model: str
    shares: tuple[int, ...]
    trials_per_task: int
    runs: int
    out: Path
    input_shapes: tuple[str, ...]


def tunesvc(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "tunesvc", *args], capture_output=True,
                          text=True, env=os.environ.copy())
    if done.returncode != 0:
        raise click.ClickException(f"tunesvc {' '.join(args)} failed:\n{done.stderr.strip()}")
    return done


def shape_args(settings: Settings) -> list[str]:
    return [arg for shape in settings.input_shapes for arg in ("--input-shape", shape)]


def tune_at(settings: Settings, share: int) -> TuneRun:
    db_url = f"sqlite:///{settings.out / f'tuned-{share}.sqlite'}"
    started = time.monotonic()
    tunesvc("tune", settings.model, "--target", settings.target, "--shares", str(share),
            "--trials-per-task", str(settings.trials_per_task), "--db", db_url,
            "--log-dir", str(settings.out / "logs" / f"tune-{share}"), *shape_args(settings))
    wall = time.monotonic() - started
    stats = json.loads(tunesvc("db", "stats", "--json", "--db", db_url).stdout)
    return TuneRun(share, db_url, wall, stats["records"])


def run_at(settings: Settings, model: str, share: int, db_url: str,
           extra: list[str]) -> float:
    report = json.loads(tunesvc("run", model, "--target", settings.target, "--share", str(share),
                                "--runs", str(settings.runs), "--json", "--db", db_url,
                                *extra).stdout)
    if not report["agreement_ok"]:
        raise click.ClickException(f"{model} at {share}% does not match onnxruntime")
    return float(report["median_sec"])


def share_fit(settings: Settings, tuned: dict[int, TuneRun]) -> dict[str, dict[int, float]]:
    """variant ('untuned' or 'tuned@S') -> run share -> median seconds."""
    variants = {"untuned": f"sqlite:///{settings.out / 'untuned.sqlite'}"}
    variants.update({f"tuned@{s}": run.db_url for s, run in tuned.items()})
    return {
        name: {share: run_at(settings, settings.model, share, url, shape_args(settings))
               for share in settings.shares}
        for name, url in variants.items()
    }


def matmul_model(path: Path, n: int) -> Path:
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])], "matmul",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, [n, n]) for name in ("a", "b")],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def isolation(settings: Settings, n: int) -> dict[int, float]:
    model = matmul_model(settings.out / "matmul.onnx", n)
    empty = f"sqlite:///{settings.out / 'untuned.sqlite'}"
    return {share: run_at(settings, str(model), share, empty, []) for share in settings.shares}


def device_description(target: str) -> str:
    if target == "cpu":
        return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    scan = json.loads(tunesvc("gpus", "--json").stdout)
    return ", ".join(f"{g['name']} ({g['multiprocessors']} SMs)" for g in scan["gpus"]) or "none"


def markdown(results: dict) -> str:
    shares = results["settings"]["shares"]
    head = "| variant | " + " | ".join(f"run at {s}%" for s in shares) + " |"
    rule = "|---" * (len(shares) + 1) + "|"
    fit = [f"| {name} | " + " | ".join(f"{row[str(s)] * 1e3:.3f} ms" for s in shares) + " |"
           for name, row in results["share_fit_median_sec"].items()]
    tput = results["throughput"]
    iso = " | ".join(f"{s}%: {results['isolation_median_sec'][str(s)] * 1e3:.3f} ms"
                     for s in shares)
    return "\n".join([
        f"Device: {results['device']}; {results['date']}; command: `{results['command']}`", "",
        "### Share fit (median latency)", "", head, rule, *fit, "",
        "### Tuning throughput (same trial budget)", "",
        "| tuner | wall time | trials | trials/min |", "|---|---|---|---|",
        *[f"| {row['label']} | {row['wall_sec']:.0f} s | {row['trials']} | "
          f"{row['trials_per_minute']:.1f} |" for row in tput["runs"]],
        "", f"Throughput ratio (shared / whole device): {tput['ratio']:.2f}x", "",
        f"### Isolation ({ISOLATION_MATMUL}^3 matmul, default schedule)", "", iso, "",
    ])


def throughput(settings: Settings, tuned: dict[int, TuneRun]) -> dict:
    whole, smallest = tuned[max(tuned)], tuned[min(tuned)]
    runs = [
        {"label": f"1 worker at {whole.share}%", **asdict(whole),
         "trials_per_minute": whole.trials_per_minute},
        {"label": f"{100 // smallest.share} workers at {smallest.share}%", **asdict(smallest),
         "trials_per_minute": smallest.trials_per_minute},
    ]
    return {"runs": runs, "ratio": smallest.trials_per_minute / whole.trials_per_minute}


@click.command()
@click.option("--target", default="gpu", show_default=True, help="gpu, cpu or a CUDA tag.")
@click.option("--model", default="zoo:resnet18", show_default=True)
@click.option("--input-shape", "input_shapes", multiple=True, default=("input:1x3x224x224",),
              show_default=True)
@click.option("--shares", default="25,50,100", show_default=True)
@click.option("--trials-per-task", default=64, show_default=True, type=int)
@click.option("--runs", default=100, show_default=True, type=int)
@click.option("--matmul", default=ISOLATION_MATMUL, show_default=True, type=int,
              help="n of the n x n x n matmul of the isolation check.")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Folder for databases, logs, results.json and results.md.")
def main(target: str, model: str, input_shapes: tuple[str, ...], shares: str,
         trials_per_task: int, runs: int, matmul: int, out: Path) -> None:
    """Measure share fit, tuning throughput and isolation; see the module docstring."""
    out.mkdir(parents=True, exist_ok=True)
    percents = tuple(sorted({int(s) for s in shares.split(",")}))
    if model.startswith("zoo:mlp"):
        input_shapes = ()
    settings = Settings(target, model, percents, trials_per_task, runs, out, input_shapes)
    tuned = {}
    for share in percents:
        click.echo(f"tuning {model} at {share}% ...")
        tuned[share] = tune_at(settings, share)
    click.echo("running the share-fit matrix ...")
    fit = share_fit(settings, tuned)
    click.echo("isolation check ...")
    iso = isolation(settings, matmul)
    results = {
        "device": device_description(target),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(["scripts/bench_gpu_shares.py", *sys.argv[1:]]),
        "settings": {**asdict(settings), "out": str(out)},
        "share_fit_median_sec": fit,
        "throughput": throughput(settings, tuned),
        "isolation_median_sec": iso,
    }
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    text = markdown(json.loads(json.dumps(results, default=str)))
    (out / "results.md").write_text(text)
    click.echo(text)


if __name__ == "__main__":
    main()
