"""`tunesvc run` as a function: compile at a share, run, check against the reference, time."""

from __future__ import annotations

from dataclasses import dataclass

from tabulate import tabulate

from tunesvc.models import Shape
from tunesvc.reference import compare, reference_outputs, sample_inputs
from tunesvc.report import ms, to_json
from tunesvc.runtime import load


@dataclass(frozen=True)
class OperatorReport:
    task: str
    uses: int
    rule: str
    share_percent: int | None
    tuned_latency_sec: float | None


@dataclass(frozen=True)
class RunReport:
    model: str
    target: str
    share: str
    median_sec: float
    p90_sec: float
    runs: int
    max_abs_error: float
    tolerance: float
    agreement_ok: bool
    compiled_library: str
    cache_hit: bool
    operators: list[OperatorReport]


def run_model(model: str, target: str, share: int | None, db_url: str,
              input_shapes: dict[str, Shape], runs: int) -> RunReport:
    tuned = load(model, target=target, share=share, db=db_url, input_shapes=input_shapes)
    inputs = sample_inputs(tuned.model)
    agreement = compare(tuned(*inputs), reference_outputs(tuned.model, inputs))
    latency = tuned.benchmark(*inputs, runs=runs)
    operators = [
        OperatorReport(s.task_name, s.weight, s.lookup.choice.rule,
                       s.lookup.choice.chosen_percent, s.tuned_run_sec)
        for s in tuned.sources
    ]
    return RunReport(
        model=model, target=str(tuned.target.kind.name), share=tuned.share.label,
        median_sec=latency.median_sec, p90_sec=latency.p90_sec, runs=latency.runs,
        max_abs_error=agreement.max_abs_error, tolerance=agreement.tolerance,
        agreement_ok=agreement.ok, compiled_library=str(tuned.library_path),
        cache_hit=tuned.cache_hit, operators=operators,
    )


def render(report: RunReport, as_json: bool) -> str:
    if as_json:
        return to_json(report)
    tuned = sum(1 for op in report.operators if op.rule != "none")
    rows = [[op.task, op.uses, _source(op), ms(op.tuned_latency_sec)] for op in report.operators]
    check = "matches" if report.agreement_ok else "DOES NOT MATCH"
    return "\n".join([
        f"{report.model} on {report.target} at {report.share}: "
        f"median {ms(report.median_sec)}, p90 {ms(report.p90_sec)} over {report.runs} runs",
        f"output {check} onnxruntime (max abs error {report.max_abs_error:.2e}, "
        f"tolerance {report.tolerance:.2e})",
        f"{tuned} of {len(report.operators)} operators use tuned schedules"
        f" (library {'from cache' if report.cache_hit else 'compiled'}: {report.compiled_library})",
        "",
        tabulate(rows, headers=["operator", "uses", "schedule from", "tuned kernel"],
                 tablefmt="simple"),
    ])


def _source(op: OperatorReport) -> str:
    if op.rule == "exact":
        return f"{op.share_percent}% (exact)"
    if op.rule == "nearest":
        return f"{op.share_percent}% (nearest)"
    return "TVM default"
