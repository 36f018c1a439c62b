"""From a loaded model to TVM: a Relax module, then MetaSchedule tuning tasks.

Tasks are extracted after the same legalize/fuse passes that `tunesvc.compiler` runs
before it applies a database, so the workload a task is tuned as is exactly the workload
the compiler later looks up. On CPU targets the fused functions also say which of their
inputs are constant weights (`layout_free_buffers`): MetaSchedule may then choose a
blocked layout for them, which the compiler applies once at compile time.
"""

from __future__ import annotations

import tvm
from tvm import relax
from tvm.ir import IRModule
from tvm.relax import pipeline as relax_pipeline
from tvm.relax.frontend.onnx import from_onnx
from tvm.s_tir import meta_schedule as ms
from tvm.target import Target

from schedules_db.ms_adapter import workload_shash
from tunesvc.errors import UserError
from tunesvc.models import LoadedModel
from workers.jobs import TaskSpec


def to_relax(model: LoadedModel) -> IRModule:
    """Import the ONNX graph with its weights bound as constants."""
    try:
        mod = from_onnx(model.proto, shape_dict=dict(model.input_shapes),
                        keep_params_in_input=False)
    except Exception as exc:  # the ONNX frontend raises many types for unsupported graphs
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(f"TVM cannot import {model.source}: {first_line}") from None
    return relax.transform.DecomposeOpsForInference()(mod)


def prepacks_weights(target: Target) -> bool:
    """Whether kernels for `target` may read weights in a layout of their choosing."""
    return target.kind.name == "llvm"


def fuse_passes(target: Target) -> tvm.transform.Pass:
    """The passes run before tasks are extracted and before a database is applied."""
    try:
        dispatch = list(relax_pipeline.library_dispatch_passes(target))
    except (ValueError, AttributeError):
        dispatch = []
    return tvm.transform.Sequential([
        *dispatch,
        relax.transform.LegalizeOps(),
        relax.transform.AnnotateTIROpPattern(),
        relax.transform.FoldConstant(),
        relax.transform.FuseOps(),
        relax.transform.FuseTIR(),
        *([relax.transform.AttachAttrLayoutFreeBuffers()] if prepacks_weights(target) else []),
    ])


def extract_tasks(mod: IRModule, target: Target) -> list[TaskSpec]:
    """Tuning tasks of `mod`; identical workloads are one task with a weight."""
    with target, tvm.transform.PassContext(opt_level=3):
        fused = fuse_passes(target)(mod)
    extracted = ms.relax_integration.extract_tasks(fused, target)
    return [
        TaskSpec(task.task_name, workload_shash(task.dispatched[0]), int(task.weight),
                 task.dispatched[0])
        for task in extracted
    ]
