#!/usr/bin/env python3
"""What one search round costs per kind of task: the time MetaSchedule's evolutionary
search takes to propose a batch of candidates (its replays, postprocessors and mutations;
cost model untrained), the time to simplify a design space once, and the time to build a
candidate, for chosen tasks of a model.

    scripts/bench_search_cost.py zoo:resnet18 --task fused_conv2d1_add1_add2_relu11 \\
        --task fused_winograd4_conv2d1_add1_add2_relu11 --out search-cost.json

The search runs on one thread (as a worker at a one-core share does). Run it on a quiet
machine: it times things.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import median
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from tvm.ir import IRModule
    from tvm.target import Target

BATCH = 8  # a first chunk
BUILDS = 4


@dataclass(frozen=True)
class Cost:
    task: str
    simplify_ms: float  # StmtSimplify over the first design space, median of 5
    generate_s: float  # one batch of BATCH candidates
    build_s: float  # per candidate, median of BUILDS


def task_cost(mod: IRModule, target: Target, name: str, population: int) -> Cost:
    """What one search round, one simplify and one build cost for the task `mod`."""
    import tvm
    from tvm.s_tir import meta_schedule as ms
    from tvm.tirx.transform import StmtSimplify

    search = ms.search_strategy.EvolutionarySearch(population_size=population)
    context = ms.TuneContext(mod=mod, target=target, space_generator="post-order-apply",
                             search_strategy=search, task_name=name, num_threads=1)
    spaces = context.generate_design_space()
    simplify = []
    for _ in range(5):
        started = time.perf_counter()
        StmtSimplify()(spaces[0].mod)
        simplify.append(time.perf_counter() - started)
    search.pre_tuning(BATCH, BATCH, spaces, ms.database.MemoryDatabase(),
                      ms.cost_model.XGBModel(num_tuning_cores=1))
    started = time.perf_counter()
    candidates = search.generate_measure_candidates()
    generate = time.perf_counter() - started
    builds = []
    for candidate in candidates[:BUILDS]:
        started = time.perf_counter()
        tvm.compile(candidate.sch.mod, target=target)
        builds.append(time.perf_counter() - started)
    return Cost(name, median(simplify) * 1e3, generate, median(builds))


@click.command()
@click.argument("model")
@click.option("--task", "tasks", multiple=True, required=True, help="A task name (repeatable).")
@click.option("--population", default=64, show_default=True,
              help="Evolutionary search population (a first chunk's, see SearchConfig).")
@click.option("--out", type=click.Path(path_type=Path), help="Write the rows as JSON here.")
def main(model: str, tasks: tuple[str, ...], population: int, out: Path | None) -> None:
    from tunesvc.models.sources import load_model
    from tunesvc.pipeline.importer import extract_task_set, to_relax
    from tunesvc.targets import TargetSpec
    from workers.fused_rules import register
    from workers.intrinsics import load_tensor_intrinsics
    from workers.shares import Share

    target = TargetSpec("cpu").for_share(Share("cpu", 50))
    found = {t.name: t for t in extract_task_set(to_relax(load_model(model)), target).tasks}
    missing = [name for name in tasks if name not in found]
    if missing:
        raise click.UsageError(f"no such task in {model}: {', '.join(missing)}")
    load_tensor_intrinsics(target.kind.name)
    register()
    click.echo("| task | simplify | one batch of 8 | build per candidate |")
    click.echo("|---|---|---|---|")
    rows = []
    for name in tasks:
        cost = task_cost(found[name].mod, target, name, population)
        rows.append(cost)
        click.echo(f"| {name} | {cost.simplify_ms:.1f} ms | {cost.generate_s:.1f} s | "
                   f"{cost.build_s:.2f} s |")
    if out:
        out.write_text(json.dumps([asdict(row) for row in rows], indent=2) + "\n")


if __name__ == "__main__":
    main()
