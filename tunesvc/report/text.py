"""Text and JSON renderings of what the CLI shows; no computation happens here."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from tabulate import tabulate

from schedules_db import SliceSummary, StoreStats
from schedules_db.engine import safe_url
from schedules_db.model_registry import ModelTask
from tunesvc.evaluation.baselines import DEFAULT_BUDGET_SEC, Comparison
from tunesvc.runtime.timing import TIMED_BUDGET_SEC
from tunesvc.tuning.dispatch import ShareSummary
from tunesvc.gpus import GpuScan
from tunesvc.evaluation.run import OperatorReport, RunReport
from tunesvc.tuning.planning import TransferSources, TunePlan
from tunesvc.evaluation.at_shares import MeasuredShare
from workers.jobs import TuneResult


def ms(seconds: float | None) -> str:
    """Seconds as a readable latency ('0.123 ms', '45.6 us')."""
    if seconds is None:
        return "n/a"
    if seconds < 1e-6:
        return f"{seconds * 1e9:.0f} ns"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    return f"{seconds * 1e3:.3f} ms"


def to_json(value: Any) -> str:
    return json.dumps(_plain(value), indent=2, default=str)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def plan_lines(plan: TunePlan) -> list[str]:
    """What `tune` says before it starts: the plan, the database, where logs go."""
    request = plan.request
    if request.total_trials is None:
        budget = f"{request.trials_per_task} trials per task and share"
    else:
        left = ", ".join(f"{s.label} {n}" for s, n in plan.trials_left.items())
        budget = (f"{request.total_trials} trials per share for the model, at most "
                  f"{request.trials_per_task} per task (left to measure: {left})")
    shares = "; ".join(share.backend.describe(share) for share in request.shares)
    lines = [f"Tuning {plan.model_name}: {len(plan.tasks)} tasks x {len(request.shares)} shares, "
             f"{budget}", f"Shares: {shares}", f"Database: {safe_url(request.db_url)}"]
    if plan.records_to_forget:
        lines.append(f"--fresh: {plan.records_to_forget} earlier records of this model will be "
                     "deleted once workers are ready")
    lines += [f"{r.share.label}: {r.tasks} of {len(plan.tasks)} tasks reused, tuned already "
              f"for {', '.join(r.models)} (trials go to what is new or under budget)"
              for r in plan.reused]
    lines += [_transfer_line(t) for t in plan.transfer]
    if plan.already_tuned and request.total_trials is None:
        lines.append(f"{len(plan.already_tuned)} task x share slices already hold their trials "
                     f"(skipped); {plan.jobs_planned} jobs to run")
    return [*lines, f"Job logs: {plan.log_root}"]


def progress_line(done: int, total: int | None, result: TuneResult, share_trials: int,
                  share_budget: int | None) -> str:
    """One finished job: `[done/total]` with a fixed plan, `[done]` and the share's trials
    out of its budget under a model-level budget."""
    count = f"[{done}/{total}]" if total is not None else f"[{done}]"
    spent = f" {share_trials}/{share_budget} trials" if share_budget is not None else ""
    head = f"{count} {result.share.label:<9} {result.task_name:<40}"
    if not result.ok:
        return f"{head} FAILED: {result.error} (log: {result.log_path})"
    wrong = (f"; {result.wrong_schedules} schedule(s) computed wrong outputs, marked failed"
             if result.wrong_schedules else "")
    return (f"{head} {result.trials_measured:>3} trials  best {ms(result.best_run_sec):>11}"
            f"  untuned {ms(result.default_run_sec):>11}  ({result.wall_sec:.0f} s){spent}{wrong}")


def share_table(summaries: list[ShareSummary]) -> str:
    rows = [
        [s.share.label, s.tasks_tuned, s.tasks_failed, s.trials_measured,
         f"{s.trials_per_minute:.1f}" if s.trials_per_minute else "n/a",
         ms(s.tuned_latency_sec), ms(s.untuned_latency_sec),
         f"{s.speedup:.2f}x" if s.speedup else "n/a"]
        for s in summaries
    ]
    headers = ["share", "tasks tuned", "failed", "trials", "trials/min", "est. latency tuned",
               "untuned", "speedup"]
    return tabulate(rows, headers=headers, tablefmt="simple")


def measured_table(measured: list[MeasuredShare]) -> str:
    """Per share, the model as `tunesvc run` measures it: tuned, TVM default, onnxruntime."""
    rows = [
        [m.share.label, ms(m.tuned_median_sec), ms(m.default_median_sec),
         ms(m.onnxruntime_median_sec),
         m.error if m.error else _versus(m.speedup_vs_onnxruntime)]
        for m in measured
    ]
    headers = ["share", "measured: tuned", "TVM default", "onnxruntime, same cores", "verdict"]
    return tabulate(rows, headers=headers, tablefmt="simple")


def records_table(rows: list[SliceSummary], names: dict[str, list[ModelTask]]) -> str:
    table = [
        [r.workload_shash, _task_label(names.get(r.workload_shash, [])),
         json.loads(r.target_key).get("kind"), f"{r.share_kind}:{r.share_percent}%",
         ms(r.best_run_sec), r.records, r.last_tuned.strftime("%Y-%m-%d %H:%M")]
        for r in rows
    ]
    headers = ["workload", "task", "target", "share", "best latency", "records", "last tuned"]
    return tabulate(table, headers=headers, tablefmt="simple")


def _task_label(tasks: list[ModelTask]) -> str:
    """'model: task', and how many more models use the workload."""
    if not tasks:
        return "(unregistered)"
    first = f"{Path(tasks[0].model).name}: {tasks[0].task_name}"
    return first + (f" (+{len(tasks) - 1} more)" if len(tasks) > 1 else "")


def stats_text(url: str, stats: StoreStats) -> str:
    rows = [
        ["database", url],
        ["workloads", stats.workloads],
        ["targets", stats.targets],
        ["shares tuned", ", ".join(stats.shares) or "none"],
        ["records", f"{stats.records} ({stats.failed_records} failed)"],
        ["first tuned", stats.first_tuned or "never"],
        ["last tuned", stats.last_tuned or "never"],
    ]
    return tabulate(rows, tablefmt="plain")


def gpus_text(scan: GpuScan) -> str:
    if not scan.gpus:
        return f"No NVIDIA GPU found: {scan.problem or 'NVML lists no devices'}."
    rows = [
        [g.index, g.name, f"{g.memory_total_mib} MiB", g.multiprocessors or "?",
         f"{g.compute_capability[0]}.{g.compute_capability[1]}", "yes" if g.mps_served else "no",
         g.uuid]
        for g in scan.gpus
    ]
    headers = ["gpu", "name", "memory", "SMs", "compute cap.", "MPS", "uuid"]
    return tabulate(rows, headers=headers, tablefmt="simple")


def run_text(report: RunReport) -> str:
    """What `tunesvc run` prints: latency, comparison, agreement, where schedules came from."""
    tuned = sum(1 for op in report.operators if op.rule in ("exact", "nearest"))
    rows = [[op.task, op.uses, _schedule_source(op), ms(op.tuned_latency_sec)]
            for op in report.operators]
    check = "matches" if report.agreement_ok else "DOES NOT MATCH"
    latency = report.latency
    return "\n".join([
        f"{report.model} on {report.isa} at {report.share_detail}: median {ms(latency.median_sec)}, "
        f"p90 {ms(latency.p90_sec)}, p99 {ms(latency.p99_sec)}, mean {ms(latency.mean_sec)} "
        f"over {latency.runs} runs{_runs_cut(report)}",
        *comparison_lines(report.comparison),
        f"output {check} {report.reference_engine} (max abs error {report.max_abs_error:.2e}, "
        f"tolerance {report.tolerance:.2e}: {report.tolerance_rule or 'float32 rule'})",
        f"{tuned} of {len(report.operators)} operators use tuned schedules"
        f" (library {'from cache' if report.cache_hit else 'compiled'}: {report.compiled_library})",
        *_algorithm_lines(report.operators),
        *[f"not used: {o.operators} operators have records {o.reason}"
          for o in report.records_for_other_targets],
        "",
        tabulate(rows, headers=["operator", "uses", "schedule from", "tuned kernel"],
                 tablefmt="simple"),
    ])


def _runs_cut(report: RunReport) -> str:
    if report.runs_asked <= report.latency.runs:
        return ""
    return (f" (of --runs {report.runs_asked}: {TIMED_BUDGET_SEC:g} s of timed calls at most"
            f"{', and at least one a round' if report.comparison.rounds else ''})")


def _transfer_line(sources: TransferSources) -> str:
    scratch = sources.new_tasks - sources.with_source
    return (f"--transfer at {sources.share.label}: {sources.with_source} of "
            f"{sources.new_tasks} tasks new here start from another share's best"
            + (f"; {scratch} were tuned at no other share and search from scratch"
               if scratch else ""))


def comparison_lines(comparison: Comparison) -> list[str]:
    """Tuned vs TVM default vs onnxruntime, timed in the same run (interleaved rounds)."""
    lines = []
    if comparison.tvm_default is not None:
        lines.append(f"  TVM default schedules: median {ms(comparison.tvm_default.median_sec)} "
                     f"({comparison.tvm_default.runs} runs, {DEFAULT_BUDGET_SEC:g} s at most); "
                     f"{_versus(comparison.speedup_vs_default, 'TVM default')}")
    for name, stats, speedup in (("onnxruntime", comparison.onnxruntime,
                                  comparison.speedup_vs_onnxruntime),
                                 ("PyTorch", comparison.pytorch, comparison.speedup_vs_pytorch)):
        if stats is not None:
            lines.append(f"  {name}, {comparison.onnxruntime_threads} threads on the same cores: "
                         f"median {ms(stats.median_sec)} ({stats.runs} runs); "
                         f"{_versus(speedup, name)}{_spread(comparison)}")
    if comparison.note:
        lines.append(f"  comparison: {comparison.note}")
    return lines


def _spread(comparison: Comparison) -> str:
    ratio = comparison.ratio_vs_reference
    if ratio is None:
        return ""
    return (f" (tuned/reference latency, median of {ratio.rounds} interleaved rounds: "
            f"{ratio.median:.2f}, quartiles {ratio.low:.2f}-{ratio.high:.2f})")


def _versus(speedup: float | None, engine: str = "onnxruntime") -> str:
    if speedup is None:
        return "no ratio"
    if speedup >= 1:
        return f"tuned is {speedup:.2f}x faster than {engine}"
    return f"tuned is {1 / speedup:.2f}x SLOWER than {engine}"


def _algorithm_lines(operators: list[OperatorReport]) -> list[str]:
    """'2 operators run their convolution as Winograd (winograd4 x2); ...' and '1
    operator runs a 1x1 and a depthwise convolution as one kernel', when any does."""
    winograd = [op.algorithm for op in operators if op.algorithm not in ("direct", "fused")]
    fused = sum(op.algorithm == "fused" for op in operators)
    lines = []
    if winograd:
        counts = {name: winograd.count(name) for name in sorted(set(winograd))}
        detail = ", ".join(f"{name} x{count}" for name, count in counts.items())
        lines.append(f"{len(winograd)} operators run their convolution as Winograd ({detail}); "
                     f"the others as tuned direct kernels")
    if fused:
        lines.append(f"{fused} operators run a 1x1 convolution and the depthwise one reading "
                     f"it as one kernel")
    return lines


def _schedule_source(op: OperatorReport) -> str:
    if op.rule == "exact":
        return f"{op.share_percent}% (exact)"
    if op.rule == "nearest":
        return f"{op.share_percent}% (nearest)"
    if op.rule == "default":
        return f"TVM default (faster than tuned at {op.share_percent}%)"
    return "TVM default"
