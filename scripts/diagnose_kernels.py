#!/usr/bin/env python3
"""Where a tuned model's time goes: stored best times against the same kernels measured
again (hot, as MetaSchedule measures; and with the CPU cache flushed), and per-operator
time inside the compiled model.

    scripts/diagnose_kernels.py zoo:mobilenet_v2 --db sqlite:///mnv2.sqlite --share 100 --top 10

Run it on a quiet machine: it times things.
"""

from __future__ import annotations

import time
from collections import defaultdict

import click


def in_model_times(model: str, db: str, share: int, runs: int = 5) -> dict[str, float]:
    """Seconds per inference spent in each called function (VM instrumentation)."""
    from tunesvc.models.inputs import sample_inputs
    from tunesvc.runtime.tuned import load

    tuned = load(model, share=share, db=db, hold=True)
    inputs = sample_inputs(tuned.model)
    click.echo(f"end to end: {tuned.benchmark(*inputs, runs=30).median_sec * 1e3:.2f} ms")
    spent, _ = vm_call_times(str(tuned.library_path), inputs, runs)
    return {symbol: seconds / runs for symbol, seconds in spent.items()}


def vm_call_times(library: str, inputs: list, runs: int) -> tuple[dict[str, float], dict[str, int]]:
    """Over `runs` inferences of a compiled model (after one warm-up): seconds spent in
    each function the VM calls, and how many calls."""
    import tvm
    from tvm import relax

    vm = relax.VirtualMachine(tvm.runtime.load_module(library), tvm.cpu())
    tensors = [tvm.runtime.tensor(a, tvm.cpu()) for a in inputs]
    spent: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    started: dict[str, float] = {}

    def instrument(_func, symbol, before, _ret, *_args):  # type: ignore[no-untyped-def]
        if before:
            started[symbol] = time.perf_counter()
        else:
            spent[symbol] += time.perf_counter() - started[symbol]
            calls[symbol] += 1
        return 0

    vm["main"](*tensors)
    vm.set_instrument(instrument)
    for _ in range(runs):
        vm["main"](*tensors)
    return spent, calls


def kernel_rows(model: str, db: str, share: int, top: int) -> list[tuple]:
    """(task, uses, stored, hot, flushed) for the `top` operators by stored time x uses."""
    from tvm.s_tir import meta_schedule as ms

    from schedules_db import Store
    from schedules_db.ms_adapter import SliceDatabase
    from tunesvc.pipeline.importer import extract_tasks, to_relax
    from tunesvc.models.sources import load_model
    from tunesvc.targets import TargetSpec
    from workers.measure import make_builder, measure_module
    from workers.shares import Share

    at = Share("cpu", share)
    at.backend.hold(at)
    here = TargetSpec("cpu").at(at)
    target = here.target
    store = Store(db)
    database = SliceDatabase(store, here.key)
    stored = [(task, store.top_records(database.key, task.shash, limit=1))
              for task in extract_tasks(to_relax(load_model(model)), target)]
    heavy = sorted(((t, best[0].mean_run_sec) for t, best in stored if best),
                   key=lambda pair: -pair[1] * pair[0].weight)[:top]
    builder = make_builder(at.backend.host_threads(at) or 1)
    hot = ms.runner.LocalRunner(timeout_sec=60)
    flushed = ms.runner.LocalRunner(timeout_sec=60, evaluator_config=ms.runner.EvaluatorConfig(
        number=1, repeat=10, min_repeat_ms=0, enable_cpu_cache_flush=True))
    rows = []
    for task, stored_sec in heavy:
        mod = database.query_schedule(task.mod, target, workload_name="main").mod
        rows.append((task.name, task.weight, stored_sec,
                     measure_module(mod, target, builder, hot),
                     measure_module(mod, target, builder, flushed)))
    return rows


@click.command()
@click.argument("model")
@click.option("--db", required=True, help="Database the model was tuned into.")
@click.option("--share", default=100, show_default=True, type=int)
@click.option("--top", default=10, show_default=True, type=int)
def main(model: str, db: str, share: int, top: int) -> None:
    in_model = in_model_times(model, db, share)
    rows = kernel_rows(model, db, share, top)
    click.echo("| operator | uses | stored best | measured again, hot | cache flushed | in the model, per call |")
    click.echo("|---|---|---|---|---|---|")
    for name, uses, stored, hot, flushed in rows:
        click.echo(f"| {name} | {uses} | {stored * 1e6:.1f} us | {hot * 1e6:.1f} us | "
                   f"{flushed * 1e6:.1f} us | {in_model.get(name, 0) / uses * 1e6:.0f} us |")
    sums = [sum(r[i] * r[1] for r in rows) * 1e3 for i in (2, 3, 4)]
    click.echo(f"weighted sums: stored {sums[0]:.2f} ms, hot {sums[1]:.2f} ms, "
               f"flushed {sums[2]:.2f} ms; all calls in the model "
               f"{sum(in_model.values()) * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
