#!/usr/bin/env python3
"""How fast does tunesvc run an int8 model, against onnxruntime's own int8 kernels?

A float ONNX model (a file, or a zoo model saved as one) is quantized the two ways
onnxruntime's quantizer offers: static QDQ (per-channel weights, activations calibrated on
standard-normal inputs) and dynamic (ConvInteger/MatMulInteger, activation scales computed
at run time). Then, one at a time on an otherwise idle machine:

1. onnxruntime alone on the float model and both int8 models, interleaved per round
   (float, qdq, dynamic, float, ...), one intra-op thread per core: what int8 buys there;
2. `tunesvc run VARIANT --json` on each variant, in a fresh process: tunesvc's model with
   what the database holds for it (TVM's default schedules if it was never tuned), timed
   interleaved with onnxruntime on the same variant, and checked against it.

    scripts/bench_int8.py zoo:resnet18 --out /tmp/int8
    tunesvc tune /tmp/int8/resnet18-qdq.onnx --trials 300 --no-compare   # then again:
    scripts/bench_int8.py zoo:resnet18 --out /tmp/int8

Writes results.json and results.md to --out; quantized files are kept there and reused.
"""

from __future__ import annotations

import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from functools import partial
from datetime import datetime, timezone
from pathlib import Path

import click
import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, quantize_dynamic,
                                      quantize_static)

from bench_worth_tuning import _cpu_name  # same folder: run as a script
from tunesvc.runtime.timing import LatencyStats, RoundRatios, time_interleaved

VARIANTS = ("float", "qdq", "dynamic")


def _float_model(model: str, out: Path) -> Path:
    if not model.startswith("zoo:"):
        return Path(model)
    from tunesvc.models import zoo
    name = model.removeprefix("zoo:")
    path = out / f"{name}-float.onnx"
    if not path.exists():
        entry = zoo.ZOO[name]
        onnx.save(entry.build(entry.default_shape), path)
    return path


def _feeds(path: Path, count: int) -> list[dict[str, np.ndarray]]:
    """`count` sets of standard-normal inputs for every input of `path` (static shapes)."""
    rng = np.random.default_rng(1)
    inputs = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_inputs()
    for value in inputs:
        if not all(isinstance(d, int) for d in value.shape):
            raise click.ClickException(f"input {value.name} has dynamic dimensions {value.shape}")
    return [{v.name: rng.standard_normal(v.shape).astype(np.float32) for v in inputs}
            for _ in range(count)]


class _Calibration(CalibrationDataReader):
    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self._feeds = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


def _quantized(source: Path, out: Path) -> dict[str, Path]:
    stem = source.stem.removesuffix("-float")
    paths = {"float": source, "qdq": out / f"{stem}-qdq.onnx",
             "dynamic": out / f"{stem}-dynamic.onnx"}
    if not paths["qdq"].exists():
        quantize_static(source, paths["qdq"], _Calibration(_feeds(source, 16)),
                        per_channel=True, quant_format=QuantFormat.QDQ)
    if not paths["dynamic"].exists():
        quantize_dynamic(source, paths["dynamic"])
    return paths


def _sessions(paths: dict[str, Path], threads: int) -> dict[str, ort.InferenceSession]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # A session's idle threads spin after a call; interleaved with other sessions, they
    # would take the cores from the next one (measured: twice the latency).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return {name: ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            for name, path in paths.items()}


def onnxruntime_rounds(paths: dict[str, Path], rounds: int, threads: int) -> dict[str, object]:
    """Median and quartiles per variant, and the median per-round ratio to float: one
    call of each variant a round, by the interleaved clock `tunesvc run` uses."""
    sessions = _sessions(paths, threads)
    feed = _feeds(paths["float"], 1)[0]
    calls = {name: partial(session.run, None, feed) for name, session in sessions.items()}
    times = time_interleaved(calls, runs=rounds, rounds=rounds)
    result = {}
    for name, per_round in times.items():
        stats = LatencyStats.of([s for round_ in per_round for s in round_])
        ratio = RoundRatios.of(per_round, times["float"])
        result[name] = {"median_sec": stats.median_sec,
                        "quartiles_sec": _quartiles(stats.samples_sec),
                        "ratio_to_float": ratio.median if ratio else None}
    return result


def _quartiles(values: tuple[float, ...]) -> list[float]:
    q = statistics.quantiles(values, n=4)
    return [q[0], q[2]]


def tunesvc_run(path: Path, runs: int) -> dict[str, object]:
    """`tunesvc run` on one variant, as a user would; its JSON, or the error's last line."""
    command = [sys.executable, "-m", "tunesvc", "run", str(path), "--json", "--runs", str(runs)]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ)
    seconds = round(time.monotonic() - started, 1)
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        return {"error": lines[-1] if lines else f"exit {done.returncode}", "seconds": seconds}
    comparison = report["comparison"]
    return {"seconds": seconds, "tuned_median_sec": report["median_sec"],
            "tvm_default_median_sec": comparison["tvm_default"]["median_sec"],
            "onnxruntime_median_sec": comparison["onnxruntime"]["median_sec"],
            "tuned_over_onnxruntime": comparison["ratio_vs_reference"],
            "operators_tuned": _tuned_count(report["operators"]),
            "max_abs_error": report["max_abs_error"], "tolerance": report["tolerance"],
            "agreement_ok": report["agreement_ok"], "tolerance_rule": report["tolerance_rule"]}


def _tuned_count(operators: list[dict[str, object]]) -> str:
    tuned = sum(1 for op in operators if op.get("rule") != "none")
    return f"{tuned} of {len(operators)}"


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f}"


def _markdown(meta: dict[str, object], engine: dict[str, dict], runs: dict[str, dict]) -> str:
    lines = [f"{meta['machine']}, {meta['finished']}, `{meta['command']}`", "",
             f"onnxruntime alone ({meta['threads']} threads, {meta['rounds']} interleaved rounds):",
             "", "| variant | median ms | quartiles ms | per-round ratio to float |",
             "|---|---|---|---|"]
    lines += [f"| {name} | {_ms(r['median_sec'])} | {_ms(r['quartiles_sec'][0])}-"
              f"{_ms(r['quartiles_sec'][1])} | {r['ratio_to_float']:.2f} |"
              for name, r in engine.items()]
    lines += ["", "`tunesvc run` on each (onnxruntime on the same variant, interleaved):", "",
              "| variant | operators tuned | tunesvc ms | TVM default ms | onnxruntime ms | "
              "tunesvc / onnxruntime (median, spread) | max abs error / tolerance |",
              "|---|---|---|---|---|---|---|"]
    for name, r in runs.items():
        if "error" in r:
            lines.append(f"| {name} | error: {r['error']} | | | | | |")
            continue
        ratio = r["tuned_over_onnxruntime"]
        lines.append(
            f"| {name} | {r['operators_tuned']} | {_ms(r['tuned_median_sec'])} | "
            f"{_ms(r['tvm_default_median_sec'])} | {_ms(r['onnxruntime_median_sec'])} | "
            f"{ratio['median']:.2f}x ({ratio['low']:.2f}-{ratio['high']:.2f}) | "
            f"{r['max_abs_error']:.1e} / {r['tolerance']:.1e} |")
    return "\n".join(lines + [""])


@click.command()
@click.argument("model")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for the quantized models, results.json and results.md.")
@click.option("--rounds", default=30, show_default=True, help="onnxruntime rounds.")
@click.option("--runs", default=20, show_default=True, help="`tunesvc run --runs`.")
@click.option("--variants", default=",".join(VARIANTS), show_default=True,
              help="Which variants `tunesvc run` takes (onnxruntime times all).")
def main(model: str, out: Path, rounds: int, runs: int, variants: str) -> None:
    """Quantize MODEL (ONNX file or zoo:NAME) two ways and time int8 against float."""
    out.mkdir(parents=True, exist_ok=True)
    paths = _quantized(_float_model(model, out), out)
    threads = len(os.sched_getaffinity(0))
    engine = onnxruntime_rounds(paths, rounds, threads)
    print(json.dumps({k: round(v["median_sec"] * 1e3, 2) for k, v in engine.items()}), flush=True)
    results = {}
    for name in variants.split(","):
        results[name] = tunesvc_run(paths[name], runs)
        print(name, json.dumps(results[name]), flush=True)
    command = shlex.join(["scripts/bench_int8.py", *sys.argv[1:]])
    meta = {"machine": _cpu_name(), "finished": datetime.now(timezone.utc).isoformat(),
            "command": command, "threads": threads, "rounds": rounds}
    (out / "results.json").write_text(json.dumps(
        {**meta, "onnxruntime": engine, "tunesvc_run": results}, indent=2))
    (out / "results.md").write_text(_markdown(meta, engine, results))


if __name__ == "__main__":
    main()
