#!/usr/bin/env python3
"""Does per-share tuning pay? Three measurements, one command, results to JSON and markdown.

1. Share fit: the model tuned at each share (one database per tuned share, --repeats
   independent tunings of each), then every tuned variant plus TVM's default schedules
   run at every share, beside onnxruntime on the same cores (CPU): a latency matrix
   (median of --runs runs, each run in a fresh process held to its share; with repeats,
   each cell gives the median over repeats and their spread), and a heatmap PNG.
2. Tuning throughput: the same trial budget tuned by one worker at 100% and by
   100/s workers at share s side by side (the share-fit tuning runs themselves): wall
   time, measured trials per minute, and the ratio.
3. Isolation: a compute-bound matmul (TVM default schedule) at every share; latency
   must fall as the share grows if the share is enforced.

    scripts/bench_gpu_shares.py --target gpu --out out/bench          # on a GPU with MPS up
    scripts/bench_gpu_shares.py --target cpu --model zoo:mlp --shares 50,100 \\
        --trials-per-task 4 --runs 10 --out /tmp/bench                # smoke run, no GPU
    scripts/bench_gpu_shares.py --target cpu --model zoo:resnet18 --shares 50,100 \\
        --trials 600 --repeats 2 --runs 30 --out /tmp/fit-resnet18    # CPU share fit

Every figure comes from `tunesvc tune` / `tunesvc run` subprocesses, the same paths a
user runs; nothing is simulated.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import click
import onnx
from onnx import TensorProto, helper

from bench_worth_tuning import _cpu_name  # same folder: run as a script

ISOLATION_MATMUL = 2048  # n for an n x n x n float32 matmul: compute-bound on any GPU


@dataclass(frozen=True)
class TuneRun:
    share: int
    db_url: str
    wall_sec: float
    trials: int


@dataclass(frozen=True)
class Settings:
    target: str
    model: str
    shares: tuple[int, ...]
    trials_per_task: int
    runs: int
    out: Path
    input_shapes: tuple[str, ...]
    trials: int | None = None  # a model-level budget per share instead of per task
    repeats: int = 1


@dataclass(frozen=True)
class Cell:
    """One variant run at one share: the tuned model's and onnxruntime's medians."""

    median_sec: float
    p90_sec: float
    onnxruntime_median_sec: float | None


def tunesvc(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "tunesvc", *args], capture_output=True,
                          text=True, env=os.environ.copy())
    if done.returncode != 0:
        raise click.ClickException(f"tunesvc {' '.join(args)} failed:\n{done.stderr.strip()}")
    return done


def shape_args(settings: Settings) -> list[str]:
    return [arg for shape in settings.input_shapes for arg in ("--input-shape", shape)]


def tune_at(settings: Settings, share: int, repeat: int = 0) -> TuneRun:
    suffix = f"-r{repeat}" if repeat else ""
    db_url = f"sqlite:///{settings.out / f'tuned-{share}{suffix}.sqlite'}"
    budget = (["--trials", str(settings.trials)] if settings.trials is not None
              else ["--trials-per-task", str(settings.trials_per_task)])
    started = time.monotonic()
    tunesvc("tune", settings.model, "--target", settings.target, "--shares", str(share),
            *budget, "--no-compare", "-q", "--db", db_url,
            "--log-dir", str(settings.out / "logs" / f"tune-{share}{suffix}"),
            *shape_args(settings))
    wall = time.monotonic() - started
    stats = json.loads(tunesvc("db", "stats", "--json", "--db", db_url).stdout)
    return TuneRun(share, db_url, wall, stats["records"])


def run_at(settings: Settings, model: str, share: int, db_url: str,
           extra: list[str]) -> Cell:
    report = json.loads(tunesvc("run", model, "--target", settings.target, "--share", str(share),
                                "--runs", str(settings.runs), "--json", "--db", db_url,
                                *extra).stdout)
    if not report["agreement_ok"]:
        raise click.ClickException(f"{model} at {share}% does not match onnxruntime")
    reference = report["comparison"].get("onnxruntime")
    return Cell(float(report["median_sec"]), float(report["latency"]["p90_sec"]),
                float(reference["median_sec"]) if reference else None)


def share_fit(settings: Settings, tuned: list[TuneRun]) -> dict[str, dict[int, list[Cell]]]:
    """variant ('untuned' or 'tuned@S') -> run share -> one cell per repeat."""
    variants: dict[str, list[str]] = {"untuned": [f"sqlite:///{settings.out / 'untuned.sqlite'}"]}
    for run in tuned:
        variants.setdefault(f"tuned@{run.share}", []).append(run.db_url)
    return {
        name: {share: [run_at(settings, settings.model, share, url, shape_args(settings))
                       for url in urls] for share in settings.shares}
        for name, urls in variants.items()
    }


def fit_medians(fit: dict[str, dict[int, list[Cell]]]) -> dict[str, dict[int, float]]:
    """Per variant and share, the median over repeats; and onnxruntime's row (the median
    of every onnxruntime timing taken beside the runs at that share)."""
    medians = {name: {share: float(statistics.median(c.median_sec for c in cells))
                      for share, cells in row.items()} for name, row in fit.items()}
    shares = next(iter(fit.values())).keys()
    reference = {share: [c.onnxruntime_median_sec for row in fit.values() for c in row[share]
                         if c.onnxruntime_median_sec is not None] for share in shares}
    if all(reference.values()):
        medians["onnxruntime"] = {s: float(statistics.median(v)) for s, v in reference.items()}
    return medians


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
    return {share: run_at(settings, str(model), share, empty, []).median_sec
            for share in settings.shares}


def device_description(target: str) -> str:
    if target == "cpu":
        return f"{_cpu_name()}, {os.cpu_count()} cores"
    scan = json.loads(tunesvc("gpus", "--json").stdout)
    return ", ".join(f"{g['name']} ({g['multiprocessors']} SMs)" for g in scan["gpus"]) or "none"


def markdown(results: dict) -> str:
    shares = results["settings"]["shares"]
    head = "| variant | " + " | ".join(f"run at {s}%" for s in shares) + " |"
    rule = "|---" * (len(shares) + 1) + "|"
    cells = results["share_fit_cells"]
    fit = [f"| {name} | " + " | ".join(_cell_text(row[str(s)], cells.get(name, {}).get(str(s)))
                                       for s in shares) + " |"
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
        f"### Isolation ({results['isolation_matmul']}^3 matmul, default schedule)", "", iso,
        "", *(["TVM's default CPU schedules use one thread: on CPU this row cannot show "
               "isolation.", ""] if results["settings"]["target"] == "cpu" else []),
    ])


def _cell_text(median: float, cells: list[dict] | None) -> str:
    """'12.345 ms', or with repeats '12.345 ms (11.9-12.8)': the range of their medians."""
    text = f"{median * 1e3:.3f} ms"
    if cells and len(cells) > 1:
        values = [c["median_sec"] * 1e3 for c in cells]
        text += f" ({min(values):.3f}-{max(values):.3f})"
    return text


def throughput(tuned: list[TuneRun]) -> dict:
    """Per share over its repeats: wall time, trials, trials per minute; and the ratio of
    the smallest share's (workers side by side) to the whole device's."""
    shares = sorted({run.share for run in tuned})
    rows = []
    for share in (max(shares), min(shares)):
        own = [run for run in tuned if run.share == share]
        wall, trials = sum(r.wall_sec for r in own), sum(r.trials for r in own)
        workers = "1 worker" if share == 100 else f"{100 // share} workers"
        rows.append({"label": f"{workers} at {share}%", "share": share, "wall_sec": wall,
                     "trials": trials, "trials_per_minute": 60.0 * trials / wall})
    return {"runs": rows, "ratio": rows[1]["trials_per_minute"] / rows[0]["trials_per_minute"]}


def heatmap(results: dict, path: Path) -> None:
    """The share-fit matrix as a PNG: latency per variant and run share, with its ratio to
    onnxruntime at that share where onnxruntime was timed (colour, log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    fit, shares = results["share_fit_median_sec"], results["settings"]["shares"]
    names = list(fit)
    reference = fit.get("onnxruntime")
    values = [[fit[n][str(s)] / (reference[str(s)] if reference else 1.0) for s in shares]
              for n in names]
    figure, axis = plt.subplots(figsize=(1.8 + 1.6 * len(shares), 0.9 + 0.6 * len(names)))
    image = axis.imshow(values, cmap="viridis_r", aspect="auto", norm=LogNorm())
    middle = (min(map(min, values)) * max(map(max, values))) ** 0.5
    for i, name in enumerate(names):
        for j, share in enumerate(shares):
            label = f"{fit[name][str(share)] * 1e3:.4g} ms"
            if reference:
                label += f"\n{values[i][j]:.2f}x"
            axis.text(j, i, label, ha="center", va="center", fontsize=8,
                      color="white" if values[i][j] > middle else "black")
    axis.set_xticks(range(len(shares)), [f"run at {s}%" for s in shares])
    axis.set_yticks(range(len(names)), names)
    figure.colorbar(image, label="latency / onnxruntime" if reference else "latency (s)")
    axis.set_title(results["settings"]["model"], fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


@click.command()
@click.option("--target", default="gpu", show_default=True, help="gpu, cpu or a CUDA tag.")
@click.option("--model", default="zoo:resnet18", show_default=True)
@click.option("--input-shape", "input_shapes", multiple=True, default=("input:1x3x224x224",),
              show_default=True)
@click.option("--shares", default="25,50,100", show_default=True)
@click.option("--trials-per-task", default=64, show_default=True, type=int)
@click.option("--trials", type=int, help="A model-level budget per share (tune --trials) "
                                         "instead of --trials-per-task.")
@click.option("--repeats", default=1, show_default=True, type=click.IntRange(1),
              help="Independent tunings per share (the search is random), to tell a "
                   "share-fit difference from tuning noise.")
@click.option("--runs", default=100, show_default=True, type=int)
@click.option("--matmul", default=ISOLATION_MATMUL, show_default=True, type=int,
              help="n of the n x n x n matmul of the isolation check.")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Folder for databases, logs, results.json and results.md.")
def main(target: str, model: str, input_shapes: tuple[str, ...], shares: str,
         trials_per_task: int, trials: int | None, repeats: int, runs: int, matmul: int,
         out: Path) -> None:
    """Measure share fit, tuning throughput and isolation; see the module docstring."""
    out.mkdir(parents=True, exist_ok=True)
    percents = tuple(sorted({int(s) for s in shares.split(",")}))
    if model.startswith("zoo:mlp"):
        input_shapes = ()
    settings = Settings(target, model, percents, trials_per_task, runs, out, input_shapes,
                        trials, repeats)
    tuned = []
    for repeat in range(repeats):
        for share in percents:
            click.echo(f"tuning {model} at {share}% (repeat {repeat + 1} of {repeats}) ...")
            tuned.append(tune_at(settings, share, repeat))
    click.echo("running the share-fit matrix ...")
    fit = share_fit(settings, tuned)
    click.echo("isolation check ...")
    iso = isolation(settings, matmul)
    results = {
        "device": device_description(target),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(["scripts/bench_gpu_shares.py", *sys.argv[1:]]),
        "settings": {**asdict(settings), "out": str(out)},
        "share_fit_median_sec": fit_medians(fit),
        "share_fit_cells": {name: {share: [asdict(c) for c in cells]
                                   for share, cells in row.items()}
                            for name, row in fit.items()},
        "throughput": throughput(tuned),
        "isolation_median_sec": iso,
        "isolation_matmul": matmul,
    }
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    plain = json.loads(json.dumps(results, default=str))
    text = markdown(plain)
    (out / "results.md").write_text(text)
    heatmap(plain, out / "share_fit.png")
    click.echo(text)


if __name__ == "__main__":
    main()
