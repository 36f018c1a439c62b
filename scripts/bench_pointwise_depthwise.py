#!/usr/bin/env python3
"""Does one kernel for a 1x1 expansion and the depthwise convolution after it beat the two
kernels MetaSchedule tunes today?

For each MobileNetV2 layer shape asked for, on cores held as a share: the pair as two kernels
(1x1 convolution + bias + relu6; padded depthwise convolution + bias + relu6), each tuned with
--trials, and as one kernel (`tunesvc.pipeline.pointwise_depthwise`, scheduled by
`workers.fused_rules`) tuned with twice that, so both get the same budget. Both read weights
in the layouts the fused kernel reads. Then the best of each is timed in interleaved rounds
(separate, fused, separate, ...) and checked against numpy.

    scripts/bench_pointwise_depthwise.py --cores 1 --trials 64 --out /tmp/pwdw

Writes results.json and results.md to --out.
"""

from __future__ import annotations

import importlib
import json
import re
import os
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import click
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# MobileNetV2's expansion + depthwise pairs at 224, as SIZExINxEXPANDEDsSTRIDE
MOBILENET_V2_LAYERS = ("112x16x96s2", "56x24x144s1", "56x24x144s2", "28x32x192s1",
                       "14x64x384s1", "14x96x576s1", "7x160x960s1")
LAYER_FORM = re.compile(r"(\d+)x(\d+)x(\d+)s([12])")
RELU6 = (0.0, 6.0)


@dataclass(frozen=True)
class LayerResult:
    layer: str
    trials_each: int
    separate_ms: float
    fused_ms: float
    fused_over_separate: float  # median of per-round ratios
    ratio_low: float
    ratio_high: float
    tuning_sec_separate: float
    tuning_sec_fused: float
    max_abs_error: float


def _modules(size: int, c_in: int, channels: int, stride: int):
    """(pointwise kernel, depthwise kernel, fused kernel) as TVM modules."""
    import tvm
    from tvm import te, topi
    from tunesvc.pipeline.pointwise_depthwise import PointwiseDepthwise, pointwise_depthwise

    def relu6(value):
        return te.max(te.min(value, tvm.tirx.const(RELU6[1], "float32")),
                      tvm.tirx.const(RELU6[0], "float32"))

    pair = PointwiseDepthwise(stride, (1, 1, 1, 1))
    out = pair.out_size(size, 3, 1, 1)
    x = te.placeholder((1, size, size, c_in), name="x")
    w1 = te.placeholder((c_in, channels), name="w1")
    b1 = te.placeholder((channels,), name="b1")
    w2 = te.placeholder((3, 3, channels), name="w2")
    b2 = te.placeholder((channels,), name="b2")
    k = te.reduce_axis((0, c_in), "k")
    pw = te.compute((1, size, size, channels),
                    lambda n, h, w, c: te.sum(x[n, h, w, k] * w1[k, c], axis=k), name="pw")
    act = te.compute(pw.shape, lambda n, h, w, c: relu6(pw[n, h, w, c] + b1[c]))
    a = te.placeholder(act.shape, name="a")
    padded = topi.nn.pad(a, (0, 1, 1, 0), (0, 1, 1, 0))
    r, s = te.reduce_axis((0, 3), "r"), te.reduce_axis((0, 3), "s")
    dw = te.compute((1, out, out, channels), lambda n, oh, ow, c: te.sum(
        padded[n, oh * stride + r, ow * stride + s, c] * w2[r, s, c], axis=[r, s]))

    def epilogue(t):
        return te.compute(t.shape, lambda n, h, w, c: relu6(t[n, h, w, c] + b2[c]))

    fused = epilogue(pointwise_depthwise(x, w1, w2, pair, lambda v, c: relu6(v + b1[c])))
    as_mod = lambda args: tvm.IRModule({"main": te.create_prim_func(args)})  # noqa: E731
    return (as_mod([x, w1, b1, act]), as_mod([a, w2, b2, epilogue(dw)]),
            as_mod([x, w1, b1, w2, b2, fused]))


def _tuned(mod, target, trials: int, work_dir: Path):
    """The module compiled with its best schedule after `trials`; and the seconds it took."""
    import tvm
    from tvm.s_tir import meta_schedule as ms
    from workers.measure import make_builder, make_runner
    importlib.import_module("workers.fused_rules")  # registers the fused kernel's rule

    started = time.monotonic()
    database = ms.tune_tir(mod, target, str(work_dir), max_trials_global=trials,
                           num_trials_per_iter=min(32, trials), builder=make_builder(1),
                           runner=make_runner())
    best = ms.tir_integration.compile_tir(database, mod, target)
    return tvm.compile(best.mod, target=target), time.monotonic() - started


def _reference(x, w1, b1, w2, b2, stride: int) -> np.ndarray:
    act = np.clip(np.einsum("nhwk,kc->nhwc", x, w1) + b1, *RELU6)
    padded = np.pad(act, ((0, 0), (1, 1), (1, 1), (0, 0)))
    size = (act.shape[1] + 2 - 3) // stride + 1
    out = np.zeros((1, size, size, act.shape[3]), np.float32)
    for r in range(3):
        for s in range(3):
            out += padded[:, r:r + stride * size:stride, s:s + stride * size:stride, :] * w2[r, s]
    return np.clip(out + b2, *RELU6)


def _layer(name: str, target, trials: int, out_dir: Path) -> LayerResult:
    import tvm
    from tunesvc.runtime.timing import RoundRatios, time_interleaved

    size, c_in, channels, stride = _parsed(name)
    pw_mod, dw_mod, fused_mod = _modules(size, c_in, channels, stride)
    pw_lib, pw_sec = _tuned(pw_mod, target, trials, out_dir / f"{name}-pw")
    dw_lib, dw_sec = _tuned(dw_mod, target, trials, out_dir / f"{name}-dw")
    fused_lib, fused_sec = _tuned(fused_mod, target, 2 * trials, out_dir / f"{name}-fused")
    rng = np.random.default_rng(0)
    values = [rng.standard_normal(shape).astype(np.float32) * 0.5 for shape in
              [(1, size, size, c_in), (c_in, channels), (channels,), (3, 3, channels), (channels,)]]
    x, w1, b1, w2, b2 = (tvm.runtime.tensor(v) for v in values)
    out_size = (size + 2 - 3) // stride + 1
    act = tvm.runtime.tensor(np.zeros((1, size, size, channels), np.float32))
    out_a = tvm.runtime.tensor(np.zeros((1, out_size, out_size, channels), np.float32))
    out_b = tvm.runtime.tensor(np.zeros_like(out_a.numpy()))
    separate = lambda: (pw_lib["main"](x, w1, b1, act), dw_lib["main"](act, w2, b2, out_a))  # noqa: E731
    fused = lambda: fused_lib["main"](x, w1, b1, w2, b2, out_b)  # noqa: E731
    rounds = time_interleaved({"separate": separate, "fused": fused}, runs=200, rounds=10)
    ratio = RoundRatios.of(rounds["fused"], rounds["separate"])
    expected = _reference(*values, stride)
    error = float(max(np.abs(out_a.numpy() - expected).max(), np.abs(out_b.numpy() - expected).max()))
    median = lambda key: 1e3 * float(np.median(sum(rounds[key], [])))  # noqa: E731
    return LayerResult(name, trials, median("separate"), median("fused"), ratio.median,
                       ratio.low, ratio.high, pw_sec + dw_sec, fused_sec, error)


def _parsed(layer: str) -> tuple[int, int, int, int]:
    """'56x24x144s1' -> (height and width, in channels, expanded channels, stride)."""
    match = LAYER_FORM.fullmatch(layer)
    if match is None:
        raise click.BadParameter(f"{layer!r} is not SIZExINxEXPANDEDsSTRIDE (e.g. 56x24x144s1)",
                                 param_hint="--layers")
    size, c_in, channels, stride = (int(group) for group in match.groups())
    return size, c_in, channels, stride


def _write(results: list[LayerResult], out_dir: Path, command: str) -> None:
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    (out_dir / "results.json").write_text(json.dumps(
        {"when": when, "command": command, "layers": [asdict(r) for r in results]}, indent=2))
    lines = [f"`{command}` ({when})", "",
             "| layer | trials (separate: each kernel; fused: twice) | separate | fused | "
             "fused / separate (quartiles) | max abs error |", "|---|---|---|---|---|---|"]
    lines += [f"| {r.layer} | {r.trials_each} | {r.separate_ms:.3f} ms | {r.fused_ms:.3f} ms | "
              f"{r.fused_over_separate:.2f}x ({r.ratio_low:.2f}-{r.ratio_high:.2f}) | "
              f"{r.max_abs_error:.1e} |" for r in results]
    (out_dir / "results.md").write_text("\n".join(lines) + "\n")


@click.command()
@click.option("--layers", default="112x16x96s2,56x24x144s1,14x96x576s1", show_default=True,
              help="Comma-separated SIZExINxEXPANDEDsSTRIDE (input height and width, input "
                   "channels, expanded channels, depthwise stride); MobileNetV2's are "
                   f"{', '.join(MOBILENET_V2_LAYERS)}.")
@click.option("--cores", type=click.IntRange(1, os.cpu_count() or 1), default=1,
              show_default=True,
              help="How many of the machine's last cores the share holds (one thread each).")
@click.option("--trials", type=int, default=64, show_default=True,
              help="Trials per separate kernel (the fused kernel gets twice this).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True)
def main(layers: str, cores: int, trials: int, out_dir: Path) -> None:
    names = [name.strip() for name in layers.split(",") if name.strip()]
    for name in names:
        _parsed(name)
    from workers.shares.cpu import pin_cpu
    pin_cpu(tuple(range(os.cpu_count() - cores, os.cpu_count())))
    import tvm
    from tunesvc.targets import host_cpu_target
    target = tvm.target.Target({**host_cpu_target(), "num-cores": cores})
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for name in names:
        click.echo(f"{name}: tuning and timing...", err=True)
        results.append(_layer(name, target, trials, out_dir))
        _write(results, out_dir, " ".join(["scripts/bench_pointwise_depthwise.py", *sys.argv[1:]]))
    click.echo((out_dir / "results.md").read_text())


if __name__ == "__main__":
    main()
