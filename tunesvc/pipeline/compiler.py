"""Compile a Relax module with the schedules in a MetaSchedule database.

The same fusion passes as task extraction (`tunesvc.pipeline.importer.fuse_passes`), so every
fused function is looked up under the workload it was tuned as; then the database's
schedules; then, on CPU, weight prepacking: a tuned kernel that reads its weights in a
blocked layout gets them in that layout once, at compile time (the layout transform of
each constant weight is split out of the kernel and folded into a new constant), as
Relax's own static-shape tuning pipeline does with `cpu_weight_prepack`. On GPU,
functions the database does not cover get TVM's default (dlight) schedules.
"""

from __future__ import annotations

import tvm
from tvm import relax
from tvm.ir import IRModule
from tvm.relax import pipeline as relax_pipeline
from tvm.relax.backend.cpu_generic import pipeline as cpu_pipeline
from tvm.s_tir import meta_schedule as ms
from tvm.target import Target

from tunesvc.pipeline.conv_algorithms import ConvPlan, PlanHook
from tunesvc.pipeline.importer import fuse_passes, prepacks_weights
from tunesvc.pipeline.layout_free import ATTR as LAYOUT_FREE
from workers.measure import gpu_default_schedule

# Part of every cached library's key: a change to the passes below must change it.
PIPELINE_VERSION = "nhwc-prepack-winograd-fused-pairs-5"


def compile_with_database(mod: IRModule, target: Target, database: ms.database.Database,
                          plan: ConvPlan = ConvPlan()) -> relax.VMExecutable:
    """A VM executable of `mod` for `target` with `database`'s schedules applied and each
    convolution computed as `plan` says."""

    @tvm.transform.module_pass(opt_level=3)
    def pipeline(module: IRModule, _ctx: tvm.transform.PassContext) -> IRModule:
        passes = [fuse_passes(target, PlanHook(plan)),
                  relax.transform.MetaScheduleApplyDatabase()]
        passes += _after_database(target)
        passes += _lower_passes(target)
        return tvm.transform.Sequential(passes)(module)

    with target, database, tvm.transform.PassContext(opt_level=3):
        return relax.build(mod, target=target, relax_pipeline=pipeline)


def _after_database(target: Target) -> list[tvm.transform.Pass]:
    if prepacks_weights(target):
        return [_split_weight_prepacking, relax.transform.FoldConstant()]
    if relax_pipeline.BackendDispatcher.is_gpu_target(target):
        return [gpu_default_schedule()]
    return []


@tvm.transform.module_pass(opt_level=0, name="SplitWeightPrepacking")
def _split_weight_prepacking(module: IRModule, _ctx: tvm.transform.PassContext) -> IRModule:
    """Relax's SplitLayoutRewritePreproc on the kernels whose schedules rewrite a weight's
    layout. The others are set aside while it runs: it takes every kernel to be made of
    blocks, and one written as a single opaque block (TVM's ScatterElements, say) stops it."""
    aside = {gv: func for gv, func in module.functions.items()
             if isinstance(func, tvm.tirx.PrimFunc) and not _rewrites_layout(func)}
    rest = IRModule({gv: func for gv, func in module.functions.items() if gv not in aside},
                    attrs=module.attrs, global_infos=module.global_infos)
    split = relax.transform.SplitLayoutRewritePreproc()(rest)
    for gv, func in aside.items():
        split[gv] = func
    return split


def _rewrites_layout(func: tvm.tirx.PrimFunc) -> bool:
    """Whether a block of `func` is a layout rewrite MetaSchedule's RewriteLayout wrote."""
    return LAYOUT_FREE in (func.attrs or {}) and \
        "meta_schedule.layout_rewrite_preproc" in func.script()


def _lower_passes(target: Target) -> list[tvm.transform.Pass]:
    """The target's own lowering and finalizing passes, as `relax.build` would run them.
    (TVM's dispatcher misses the CPU backend's lowering passes: they are taken from it.)"""
    backend = cpu_pipeline if target.kind.name == "llvm" else relax_pipeline
    return [*backend.dataflow_lower_passes(target), *backend.finalize_passes(target)]
