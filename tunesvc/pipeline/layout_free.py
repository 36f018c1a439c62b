"""Which constant weights a kernel may read in a layout of its choosing, kept to those
MetaSchedule rewrites correctly.

`relax.transform.AttachAttrLayoutFreeBuffers` marks every constant input of a fused
function as layout-free. MetaSchedule's RewriteLayout postprocessing then picks a layout
from the block that computes with the weight and applies it to the weight itself. When
the weight first passes through blocks that read one buffer and write another (TVM takes
these for cache reads), it applies the same index map to each of them; that is right
only if each such block copies element for element. A transposed convolution's
`kernel_transform` swaps and flips the weight's axes instead: its rewritten weight then
drops the input channels (seen on PP-OCRv4 det: the last layer's kernel tuned at 50% gave
sigmoid outputs up to 1.0 away from onnxruntime's, while TVM's default schedule matched).

`keep_sound_layout_rewrites` leaves such a weight out of the function's layout-free
inputs: it is read in its own layout, and its transform runs in the kernel.
"""

from __future__ import annotations

import tvm
import tvm_ffi
from tvm.ir import IRModule
from tvm.ir.expr import TensorLoad
from tvm.s_tir import SBlock, Schedule
from tvm.tirx import BufferStore, PrimFunc

ATTR = "layout_free_buffers"


@tvm.transform.module_pass(opt_level=0, name="KeepSoundLayoutRewrites")
def keep_sound_layout_rewrites(mod: IRModule, _ctx: tvm.transform.PassContext) -> IRModule:
    """Every PrimFunc of `mod` with the weights whose layout RewriteLayout would get wrong
    taken out of its `layout_free_buffers`."""
    updated = IRModule(dict(mod.functions), attrs=mod.attrs, global_infos=mod.global_infos)
    for gvar, func in mod.functions.items():
        if isinstance(func, PrimFunc) and ATTR in (func.attrs or {}):
            updated[gvar] = sound(func)
    return updated


def sound(func: PrimFunc) -> PrimFunc:
    """`func` with only the layout-free inputs whose layout can be rewritten correctly."""
    marked = [int(i) for i in func.attrs[ATTR]]
    try:
        blocks = _blocks(func)
    except Exception:  # noqa: BLE001 - not made of blocks: MetaSchedule cannot tune it either
        return func
    kept = [i for i in marked if _rewritable(func.params[i], blocks)]
    if kept == marked:
        return func
    return func.with_attr(ATTR, kept)


def _blocks(func: PrimFunc) -> list[SBlock]:
    """Every block of `func` in the order RewriteLayout visits them (pre-order)."""
    sch = Schedule(func)
    found: list[SBlock] = []

    def visit(rv: object) -> None:
        for child in sch.get_child_blocks(rv):
            found.append(sch.get(child))
            visit(child)

    visit(sch.get_sblock("root"))
    return found


def _rewritable(weight: tvm.ir.expr.Var, blocks: list[SBlock]) -> bool:
    """Whether every block RewriteLayout would take for a cache read of `weight` (one read,
    one write, no init, reading the buffer the chain has reached) copies it unchanged."""
    current = weight
    for block in blocks:
        if block.init is None and len(block.reads) == 1 and len(block.writes) == 1 \
                and block.reads[0].source.same_as(current):
            if not _copies(block):
                return False
            current = block.writes[0].source
    return True


def _copies(block: SBlock) -> bool:
    """`out[i...] = in[i...]`: the same indices, the same shape."""
    body = block.body
    if not isinstance(body, BufferStore) or not isinstance(body.value, TensorLoad):
        return False
    load = body.value
    same_shape = [int(d) for d in load.source.shape] == [int(d) for d in body.buffer.shape]
    return same_shape and len(load.indices) == len(body.indices) and all(
        tvm_ffi.structural_equal(a, b) for a, b in zip(load.indices, body.indices))
