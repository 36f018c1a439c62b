"""From a loaded model to TVM: a Relax module, then MetaSchedule tuning tasks.

Tasks are extracted after the same legalize/fuse passes that `tunesvc.pipeline.compiler` runs
before it applies a database, so the workload a task is tuned as is exactly the workload
the compiler later looks up. On CPU targets convolutions run channels-last (NHWC), and
the fused functions say which of their inputs are constant weights
(`layout_free_buffers`, less those `tunesvc.pipeline.layout_free` keeps out): MetaSchedule
may then choose a blocked layout for them, which the compiler applies once at compile time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import tvm
from tvm import relax
from tvm.ir import IRModule
from tvm.relax import pipeline as relax_pipeline
from tvm.s_tir import meta_schedule as ms
from tvm.target import Target

from schedules_db.ms_adapter import workload_shash
from tunesvc.pipeline.conv_algorithms import FUSED, WINOGRAD, ConvPlan, ConvSite, PlanHook
from tunesvc.pipeline.layout_free import keep_sound_layout_rewrites
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
    `hook` says which convolutions run as Winograd and which pairs as one kernel (none
    without it). Dead-code elimination drops what a fused pair made unused."""
    try:
        dispatch = list(relax_pipeline.library_dispatch_passes(target))
    except (ValueError, AttributeError):
        dispatch = []
    return tvm.transform.Sequential([
        *dispatch,
        *([channels_last] if prepacks_weights(target) else []),
        *([hook.find()] if hook else []),
        relax.transform.LegalizeOps(hook.legalize_map() if hook else None),
        relax.transform.DeadCodeElimination(),
        relax.transform.AnnotateTIROpPattern(),
        relax.transform.FoldConstant(),
        relax.transform.FuseOps(),
        relax.transform.FuseTIR(),
        *([relax.transform.AttachAttrLayoutFreeBuffers(), keep_sound_layout_rewrites]
          if prepacks_weights(target) else []),
    ])


@dataclass(frozen=True)
class TaskSet:
    """A model's tuning tasks (every algorithm's) and which of them are alternatives:
    per Winograd-able convolution (`sites`) and per fusable pair (`pairs`)."""

    tasks: list[TaskSpec]
    sites: list[ConvSite]
    pairs: list[ConvSite] = field(default_factory=list)

    def without_pairs(self) -> TaskSet:
        """The same, every fusable pair left as its two direct kernels (no fused tasks)."""
        fused = {site.task(FUSED) for site in self.pairs}
        return TaskSet([t for t in self.tasks if t.shash not in fused], self.sites)


def extract_tasks(mod: IRModule, target: Target) -> list[TaskSpec]:
    """Tuning tasks of `mod`, Winograd variants included (see `extract_task_set`)."""
    return extract_task_set(mod, target).tasks


def extract_task_set(mod: IRModule, target: Target) -> TaskSet:
    """Tuning tasks of `mod`; identical workloads are one task with a weight. On CPU each
    Winograd-able convolution also gets one task per Winograd variant, `competes_with`
    the task it is part of when direct, and each fusable pair a fused task competing
    with its depthwise task (`also` its 1x1 one). UserError if TVM cannot lower the
    model to operators (a limit of TVM, not a bug here)."""
    direct = _fused_tasks(mod, target, ConvPlan())
    if not prepacks_weights(target):
        return TaskSet(direct.tasks, [])
    tasks = {task.shash: task for task in direct.tasks}
    sites = _winograd_sites(mod, target, direct, tasks) if direct.winograd_sites else []
    pairs = _fused_pair_sites(mod, target, direct, tasks) if direct.pairs else []
    return TaskSet(list(tasks.values()), sites, pairs)


def _winograd_sites(mod: IRModule, target: Target, direct: _Fused,
                    tasks: dict[str, TaskSpec]) -> list[ConvSite]:
    """The Winograd variants' sites; their tasks are added to `tasks`."""
    sites: dict[int, ConvSite] = {}
    for algorithm in WINOGRAD:
        variant = _variant(mod, target, ConvPlan(rest=algorithm))
        paired = _pair_sites(direct, variant) if variant else None
        if variant and paired is None:
            log.warning("%s left out: its kernels could not be matched to the direct ones",
                        algorithm)
        for index, (direct_task, variant_task) in enumerate(paired or []):
            site = sites.get(index, ConvSite(index, direct_task.shash, {}))
            sites[index] = ConvSite(index, site.direct, {**site.variants,
                                                         algorithm: variant_task.shash})
            tasks.setdefault(variant_task.shash,
                             replace(variant_task, competes_with=direct_task.shash))
    return [sites[i] for i in sorted(sites)]


def _fused_pair_sites(mod: IRModule, target: Target, direct: _Fused,
                      tasks: dict[str, TaskSpec]) -> list[ConvSite]:
    """The fused pairs' sites; their tasks are added to `tasks`."""
    variant = _variant(mod, target, ConvPlan(pairs_rest=FUSED))
    found = _fused_in(direct, variant) if variant else None
    if variant and found is None:
        log.warning("fused pairs left out: their kernels could not be matched to the direct ones")
    sites = []
    for index, (pointwise, depthwise, fused) in enumerate(found or []):
        sites.append(ConvSite(index, depthwise.shash, {FUSED: fused.shash}, pointwise.shash))
        tasks.setdefault(fused.shash, replace(fused, competes_with=depthwise.shash,
                                              also=pointwise.shash))
    return sites


def _variant(mod: IRModule, target: Target, plan: ConvPlan) -> _Fused | None:
    """The tasks under `plan`, or None if TVM cannot lower it (the direct kernels remain)."""
    try:
        return _fused_tasks(mod, target, plan)
    except UserError as exc:
        log.warning("%s left out: %s", plan.describe(), exc)
        return None


@dataclass(frozen=True)
class _Fused:
    tasks: list[TaskSpec]
    calls: list[str]  # the fused functions main calls, in order
    winograd_sites: int  # Winograd-able convolutions met
    pairs: int  # fusable pairs met
    fused: int  # pairs emitted as one kernel


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
    return _Fused(tasks, _called_functions(fused), hook.seen, len(hook.pairs), hook.fused)


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
    calls_d = _calls(direct)
    calls_v = _calls(variant)
    if calls_d is None or calls_v is None or len(calls_d) != len(calls_v):
        return None
    pairs = [(d, v) for d, v in zip(calls_d, calls_v) if d.shash != v.shash]
    return pairs if len(pairs) == variant.winograd_sites else None


def _fused_in(direct: _Fused, variant: _Fused) -> list[tuple[TaskSpec, TaskSpec, TaskSpec]] | None:
    """For each fused pair, in order: (its 1x1 convolution's direct task, its depthwise
    convolution's, the fused task). Main calls the same functions under either plan but
    where a pair's two calls became one; None if that does not hold."""
    calls_d = _calls(direct)
    calls_v = _calls(variant)
    if calls_d is None or calls_v is None:
        return None
    found = []
    d = v = 0
    while d < len(calls_d) and v < len(calls_v):
        if calls_d[d].shash == calls_v[v].shash:
            d, v = d + 1, v + 1
            continue
        if d + 1 >= len(calls_d):
            return None
        found.append((calls_d[d], calls_d[d + 1], calls_v[v]))
        d, v = d + 2, v + 1
    if (d, v) != (len(calls_d), len(calls_v)) or len(found) != variant.fused:
        return None
    return found


def _calls(fused: _Fused) -> list[TaskSpec] | None:
    """The task of each function main calls, in order; None if one is not a task."""
    by_name = {t.name: t for t in fused.tasks}
    calls = [by_name.get(name) for name in fused.calls]
    return None if None in calls else calls  # type: ignore[return-value]
