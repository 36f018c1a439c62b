"""`tunesvc plan` from arguments to a written serve config: gather the latencies, make the
plan, print it, and write it only when every objective holds."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable

from tabulate import tabulate

from tunesvc.errors import UserError
from tunesvc.serving.config_file import ServeFile, write_config
from tunesvc.serving.plan import Plan, make_plan
from tunesvc.serving.plan_inputs import (gather_latencies, parse_latency, parse_objective,
                                         whole_core_shares)
from tunesvc.serving.spec import ServedModel, checked, named, unique, with_shapes
from tunesvc.targets import TargetSpec
from workers.shares import Share, parse_shares
from workers.shares.cpu import core_count, machine_cores


def plan_and_write(arguments: tuple[str, ...], objectives: tuple[str, ...],
                   latencies: tuple[str, ...], shares: str | None, measure: bool,
                   output: Path, target: str, db_url: str, input_shapes: tuple[str, ...],
                   echo: Callable[[str], None]) -> Plan:
    spec = TargetSpec(target)
    spec.validate()
    models = _models(arguments, objectives, input_shapes)
    device, cores_of = _device(spec.share_kind)
    candidates = ([s.percent for s in parse_shares(shares, spec.share_kind)] if shares
                  else whole_core_shares(device if spec.share_kind == "cpu" else 4))

    def measured(model: ServedModel, share: int):  # type: ignore[no-untyped-def]
        from tunesvc.serving.measure import measure_latency

        return measure_latency(model, target, share, db_url)

    found = gather_latencies(models, [parse_latency(t) for t in latencies], candidates,
                             measured if measure else None, echo)
    echo("latencies (median:p99 ms; pass them as --latency to plan again without measuring): "
         + " ".join(f"{name}@{lat.share}:{lat.median_ms:.2f}:{lat.p99_ms:.2f}"
                    for name, lats in found.items() for lat in lats))
    plan = make_plan(models, found, device, cores_of)
    if not plan.options:
        raise UserError("no plan meets every objective: " + "; ".join(plan.problems))
    echo(plan_table(plan))
    chosen = [replace(o.model, share=o.share, replicas=o.replicas) for o in plan.options]
    write_config(output, ServeFile(target, chosen))
    echo(f"wrote {output} (serve it: tunesvc serve --config {output})")
    return plan


def plan_table(plan: Plan) -> str:
    rows = [(o.model.name, f"{o.share}%", o.replicas, o.cores,
             _objective(o), f"{o.p99_at_rate_ms:.1f} ms", f"{o.max_rate:.1f}/s")
            for o in plan.options]
    return tabulate(rows, headers=["model", "share", "replicas", "cores", "objective",
                                   "predicted p99 at its rate", "highest rate meeting it"])


def _objective(option) -> str:  # type: ignore[no-untyped-def]
    objective = option.model.objective
    return "-" if objective is None else f"p99 <= {objective.p99_ms:g} ms @ {objective.rate:g}/s"


def _models(arguments: tuple[str, ...], objectives: tuple[str, ...],
            input_shapes: tuple[str, ...]) -> list[ServedModel]:
    models = unique([checked(ServedModel(*named(text), share=100)) for text in arguments])
    wanted = dict(parse_objective(text) for text in objectives)
    unknown = sorted(set(wanted) - {m.name for m in models})
    if unknown:
        raise UserError(f"--objective for {unknown[0]!r}, which is not among the models "
                        f"({', '.join(m.name for m in models)})")
    models = [replace(m, objective=wanted.get(m.name)) for m in models]
    return with_shapes(models, input_shapes)


def _device(share_kind: str) -> tuple[int, Callable[[int], int]]:
    """The device's size and what a share takes of it: cores on a CPU, percent on a GPU."""
    if share_kind == "cpu":
        machine = machine_cores()
        return machine, lambda percent: core_count(Share("cpu", percent), machine)
    return 100, lambda percent: percent
