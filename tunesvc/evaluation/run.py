"""`tunesvc run` as a function: compile at a share, run, check against the reference, time,
and compare with TVM's default schedules and with onnxruntime at the same share."""

from __future__ import annotations

import json
from dataclasses import dataclass

from tunesvc.evaluation.baselines import ROUNDS, Comparison, compare_engines, skipped
from tunesvc.evaluation.decode import decode
from tunesvc.models.base import LoadedModel
from tunesvc.models.spec import ModelSpec
from tunesvc.models.inputs import model_inputs
from tunesvc.evaluation.reference import check_outputs, engine_name
from tunesvc.runtime.tuned import OtherTargetRecords, TunedModel, load, records_for_other_targets
from tunesvc.runtime.timing import LatencyStats, runs_within
from workers.cpu_isa import isa_of


@dataclass(frozen=True)
class OperatorReport:
    task: str
    uses: int
    rule: str
    share_percent: int | None
    tuned_latency_sec: float | None
    algorithm: str = "direct"  # a convolution's: direct, winograd2, winograd4


@dataclass(frozen=True)
class RunReport:
    model: str
    target: str
    isa: str
    share: str
    share_detail: str  # what the share is here, e.g. 'cpu:33% = 1 of 2 cores (50%)'
    median_sec: float
    p90_sec: float
    runs: int
    latency: LatencyStats
    comparison: Comparison
    max_abs_error: float
    tolerance: float
    agreement_ok: bool
    compiled_library: str
    cache_hit: bool
    operators: list[OperatorReport]
    records_for_other_targets: list[OtherTargetRecords]
    reference_engine: str = "onnxruntime"  # what the outputs were checked against
    tolerance_rule: str = ""  # how `tolerance` was derived
    runs_asked: int = 0  # --runs; more than `runs` when slow calls hit the time budget

    @classmethod
    def from_json(cls, text: str) -> RunReport:
        """The report `tunesvc run --json` printed (in another process)."""
        return decode(cls, json.loads(text))


def run_model(model: ModelSpec | LoadedModel, target: str, share: int | None, db_url: str,
              runs: int, reference: bool = True) -> RunReport:
    """`tunesvc run`: this process held to the share, the model compiled with its kernels,
    checked against the reference engine and timed beside it (`reference=False`: alone)."""
    tuned = load(model, target=target, share=share, db=db_url, hold=True)
    inputs = (model.inputs(tuned.model) if isinstance(model, ModelSpec)
              else model_inputs(tuned.model))
    agreement = check_outputs(tuned.model, tuned(*inputs), inputs)
    runs_asked = runs
    runs = runs_within(tuned.timed_call(*inputs), runs, at_least=ROUNDS if reference else 1)
    if reference and runs < runs_asked:
        runs -= runs % ROUNDS  # the same calls in every round, within the budget
    if reference:
        comparison = compare_engines(tuned, inputs, runs)
        latency = comparison.tuned
    else:
        latency = tuned.benchmark(*inputs, runs=runs)
        comparison = skipped(latency, "skipped (--no-reference)")
    return RunReport(
        model=tuned.model.source, target=tuned.at.json, isa=isa_of(tuned.at.attrs),
        share=tuned.share.label, share_detail=tuned.share.backend.describe(tuned.share),
        median_sec=latency.median_sec, p90_sec=latency.p90_sec,
        runs=latency.runs, latency=latency, comparison=comparison,
        max_abs_error=agreement.max_abs_error, tolerance=agreement.tolerance,
        tolerance_rule=agreement.rule, runs_asked=runs_asked,
        agreement_ok=agreement.ok, compiled_library=str(tuned.library_path),
        cache_hit=tuned.cache_hit, operators=_operators(tuned),
        records_for_other_targets=records_for_other_targets(tuned, db_url),
        reference_engine=engine_name(tuned.model),
    )


def _operators(tuned: TunedModel) -> list[OperatorReport]:
    return [
        OperatorReport(s.task_name, s.weight, s.lookup.choice.rule,
                       s.lookup.choice.chosen_percent, s.tuned_run_sec, s.algorithm)
        for s in tuned.sources
    ]
