"""From a loaded model to TVM: a Relax module, then MetaSchedule tuning tasks.

Tasks are extracted after the same legalize/fuse passes that `tunesvc.pipeline.compiler` runs
before it applies a database, so the workload a task is tuned as is exactly the workload
the compiler later looks up. On CPU targets convolutions run channels-last (NHWC), and
the fused functions say which of their inputs are constant weights
(`layout_free_buffers`): MetaSchedule may then choose a blocked layout for them, which
the compiler applies once at compile time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import tvm
from tvm import relax
from tvm.ir import IRModule
from tvm.relax import pipeline as relax_pipeline
from tvm.s_tir import meta_schedule as ms
from tvm.target import Target

from schedules_db.ms_adapter import workload_shash
from tunesvc.pipeline.conv_algorithms import WINOGRAD, ConvPlan, ConvSite, PlanHook
from tunesvc.errors import UserError, first_line
from tunesvc.models.base import LoadedModel
from workers.jobs import TaskSpec

log = logging.getLogger(__name__)


def to_relax(model: LoadedModel) -> IRModule:
    """Import the ONNX graph (or the captured PyTorch module) with its weights bound as
    constants."""
    try:
        mod = model.for_tvm.to_relax()
    except Exception as exc:  # the frontends raise many types for unsupported graphs
        log.exception("importing %s failed", model.source)
        raise UserError(f"TVM cannot import {model.source}: {first_line(exc)}") from None
    return relax.transform.DecomposeOpsForInference()(mod)



def prepacks_weights(target: Target) -> bool:
    """Whether kernels for `target` may read weights in a layout of their choosing."""
    return target.kind.name == "llvm"


# Transposed convolutions have no channels-last lowering in TVM: they stay NCHW.
CHANNELS_LAST = {"relax.nn.conv2d": ["NHWC", "OHWI"],
                 "relax.nn.conv2d_transpose": ["NCHW", "IOHW"]}
# What legalized operators are called through (not operators awaiting a lowering).
LOWERED_FORMS = {"relax.call_tir", "relax.call_dps_packed", "relax.call_pure_packed"}


@tvm.transform.module_pass(opt_level=0, name="ChannelsLast")
def channels_last(mod: IRModule, _ctx: tvm.transform.PassContext) -> IRModule:
    """Convolutions in NHWC with OHWI weights (CPU): channels innermost, so 1x1 convolutions
    are plain matrix products and depthwise ones vectorize over channels; elementwise
    operators between convolutions follow. A model it cannot convert, or whose converted
    operators TVM could not lower, stays as it is."""
    try:
        converted = relax.transform.ConvertLayout(CHANNELS_LAST)(mod)
        unlowered = _unlowered_ops(converted) - _unlowered_ops(mod)
    except Exception:  # TVM raises many types; the log keeps the traceback
        log.warning("convolutions kept in their own layout: conversion failed", exc_info=True)
        return mod
    if unlowered:
        log.warning("convolutions kept in their own layout: TVM cannot lower %s channels-last",
                    ", ".join(sorted(unlowered)))
        return mod
    return converted


def _unlowered_ops(mod: IRModule) -> set[str]:
    """Relax operators LegalizeOps leaves in `mod` (it has no lowering for them)."""
    found: set[str] = set()

    def visit(expr: relax.Expr) -> None:
        if isinstance(expr, relax.Call) and isinstance(expr.op, tvm.ir.Op) \
                and expr.op.name.startswith("relax.") and expr.op.name not in LOWERED_FORMS:
            found.add(expr.op.name)

    legalized = relax.transform.LegalizeOps()(mod)
    for function in legalized.functions.values():
        if isinstance(function, relax.Function):
            relax.analysis.post_order_visit(function, visit)
    return found


def fuse_passes(target: Target, hook: PlanHook | None = None) -> tvm.transform.Pass:
    """The passes run before tasks are extracted and before a database is applied;
    `hook` says which convolutions run as Winograd (none without it)."""
    try:
        dispatch = list(relax_pipeline.library_dispatch_passes(target))
    except (ValueError, AttributeError):
        dispatch = []
    return tvm.transform.Sequential([
        *dispatch,
        *([channels_last] if prepacks_weights(target) else []),
        relax.transform.LegalizeOps(hook.legalize_map() if hook else None),
        relax.transform.AnnotateTIROpPattern(),
        relax.transform.FoldConstant(),
        relax.transform.FuseOps(),
        relax.transform.FuseTIR(),
        *([relax.transform.AttachAttrLayoutFreeBuffers()] if prepacks_weights(target) else []),
    ])


@dataclass(frozen=True)
class TaskSet:
    """A model's tuning tasks (every algorithm's) and which of them are alternatives."""

    tasks: list[TaskSpec]
    sites: list[ConvSite]


def extract_tasks(mod: IRModule, target: Target) -> list[TaskSpec]:
    """Tuning tasks of `mod`, Winograd variants included (see `extract_task_set`)."""
    return extract_task_set(mod, target).tasks


def extract_task_set(mod: IRModule, target: Target) -> TaskSet:
    """Tuning tasks of `mod`; identical workloads are one task with a weight. On CPU each
    Winograd-able convolution also gets one task per Winograd variant, `competes_with`
    the task it is part of when direct. UserError if TVM cannot lower the model to
    operators (a limit of TVM, not a bug here)."""
    direct = _fused_tasks(mod, target, ConvPlan())
    if not prepacks_weights(target) or direct.winograd_sites == 0:
        return TaskSet(direct.tasks, [])
    sites: dict[int, ConvSite] = {}
    tasks = {task.shash: task for task in direct.tasks}
    for algorithm in WINOGRAD:
        try:
            variant = _fused_tasks(mod, target, ConvPlan(rest=algorithm))
        except UserError as exc:  # a variant TVM cannot lower: the direct kernels remain
            log.warning("%s left out: %s", algorithm, exc)
            continue
        paired = _pair_sites(direct, variant)
        if paired is None:
            log.warning("%s left out: its kernels could not be matched to the direct ones",
                        algorithm)
            continue
        for index, (direct_task, variant_task) in enumerate(paired):
            site = sites.get(index, ConvSite(index, direct_task.shash, {}))
            sites[index] = ConvSite(index, site.direct, {**site.variants,
                                                         algorithm: variant_task.shash})
            tasks.setdefault(variant_task.shash,
                             replace(variant_task, competes_with=direct_task.shash))
    return TaskSet(list(tasks.values()), [sites[i] for i in sorted(sites)])


@dataclass(frozen=True)
class _Fused:
    tasks: list[TaskSpec]
    calls: list[str]  # the fused functions main calls, in order
    winograd_sites: int  # Winograd-able convolutions met


def _fused_tasks(mod: IRModule, target: Target, plan: ConvPlan) -> _Fused:
    hook = PlanHook(plan)
    try:
        with target, tvm.transform.PassContext(opt_level=3):
            fused = fuse_passes(target, hook)(mod)
        extracted = ms.relax_integration.extract_tasks(fused, target)
    except Exception as exc:  # TVM's passes raise many types; the log keeps the traceback
        log.exception("lowering to operators failed (%s)", plan.describe())
        raise UserError(f"TVM cannot lower this model to operators: {first_line(exc)}") from None
    tasks = [TaskSpec(task.task_name, workload_shash(task.dispatched[0]), int(task.weight),
                      task.dispatched[0]) for task in extracted]
    return _Fused(tasks, _called_functions(fused), hook.seen)


def _called_functions(mod: IRModule) -> list[str]:
    names: list[str] = []

    def visit(expr: relax.Expr) -> None:
        if isinstance(expr, relax.Call) and isinstance(expr.op, tvm.ir.Op) \
                and expr.op.name == "relax.call_tir":
            names.append(expr.args[0].name_hint)

    relax.analysis.post_order_visit(mod["main"], visit)
    return names


def _pair_sites(direct: _Fused, variant: _Fused) -> list[tuple[TaskSpec, TaskSpec]] | None:
    """For each Winograd-able convolution, in order: (the direct task it is part of, the
    variant task replacing it). Fusion groups the same operators under either algorithm,
    so main calls the same sequence of functions but where a convolution changed; None
    if that does not hold (the variant is then left out rather than mismatched)."""
    by_name_d = {t.name: t for t in direct.tasks}
    by_name_v = {t.name: t for t in variant.tasks}
    calls_d = [by_name_d.get(name) for name in direct.calls]
    calls_v = [by_name_v.get(name) for name in variant.calls]
    if len(calls_d) != len(calls_v) or None in calls_d or None in calls_v:
        return None
    pairs = [(d, v) for d, v in zip(calls_d, calls_v) if d.shash != v.shash]  # type: ignore[union-attr]
    if len(pairs) != variant.winograd_sites:
        return None
    return pairs  # type: ignore[return-value]
