"""MetaSchedule's schedule for a pointwise convolution fused with the depthwise one after it.

MultiLevelTiling tiles one reduction at a time and never places one inside another's tiles,
so a kernel whose depthwise block reads a pointwise block gets its own rule: the depthwise
output is cut into (rows, columns, channels) tiles, the pointwise values each tile reads
(its halo included) are computed inside it, and the epilogue is written there too; the
full intermediate tensor is never stored. Tile sizes and vector width are sampled, so the
evolutionary search tunes them like any other. Importing this module registers the rule
(`s_tir.meta_schedule.cpu.<POINTWISE_DEPTHWISE>`); it must be imported where a design
space is generated (a tuning worker), not where a stored trace is replayed.
"""

from __future__ import annotations

import tvm
from tvm.s_tir.schedule import ExprRV, LoopRV, SBlockRV, Schedule

POINTWISE_DEPTHWISE = "tunesvc_pointwise_depthwise"  # the depthwise block's `schedule_rule`
VECTOR_WIDTHS = (16, 8, 4)  # float32 lanes tried along channels (AVX-512, AVX2, SSE)


def _vector_width_choices(channels: int) -> list[int]:
    return [width for width in VECTOR_WIDTHS if channels % width == 0] or [1]


def _tile_depthwise(sch: Schedule, block: SBlockRV,
                    width: ExprRV) -> tuple[LoopRV, list[LoopRV], LoopRV]:
    """Depthwise loops as (row, column, channel) tiles, `width` channels innermost; returns
    the loop pointwise work and epilogue go under, the loops outside it (to run in
    parallel) and the vector loop."""
    batch, rows, cols, chans, kh, kw = sch.get_loops(block)
    rows_out, rows_in = sch.split(rows, sch.sample_perfect_tile(rows, n=2, max_innermost_factor=8))
    cols_out, cols_in = sch.split(cols, sch.sample_perfect_tile(cols, n=2, max_innermost_factor=16))
    chans_rest, vector = sch.split(chans, [None, width])
    chans_out, chans_in = sch.split(
        chans_rest, sch.sample_perfect_tile(chans_rest, n=2, max_innermost_factor=8))
    sch.reorder(batch, rows_out, cols_out, chans_out, rows_in, cols_in, chans_in, kh, kw, vector)
    return chans_out, [batch, rows_out, cols_out], vector


def _tile_pointwise(sch: Schedule, block: SBlockRV, width: ExprRV) -> None:
    """The pointwise values of one tile: reduction outside a (columns x `width` channels)
    block of accumulators, channels vectorized."""
    rows, cols, chans, reduce = sch.get_loops(block)[-4:]
    chans_out, vector = sch.split(chans, [None, width])
    cols_out, cols_in = sch.split(cols, sch.sample_perfect_tile(cols, n=2, max_innermost_factor=8))
    sch.reorder(rows, cols_out, chans_out, reduce, cols_in, vector)
    sch.unroll(cols_in)
    sch.vectorize(vector)


def schedule_pointwise_depthwise(sch: Schedule,
                                 block: SBlockRV) -> list[Schedule]:
    """The rule (see the module's docstring): `block` is the depthwise block."""
    (pointwise,) = sch.get_producers(block)
    epilogue = sch.get_consumers(block)
    channels = int(sch.get(sch.get_loops(block)[3]).extent)
    widths = _vector_width_choices(channels)
    width = sch.sample_categorical(widths, [1.0 / len(widths)] * len(widths))
    tile_loop, outer, vector = _tile_depthwise(sch, block, width)
    # Structure first, then loop kinds: a fused loop's bindings in a moved block, or a
    # vector loop above a reduction, would make the later steps refuse.
    sch.compute_at(pointwise, tile_loop, preserve_unit_loops=True)
    for consumer in epilogue:
        sch.reverse_compute_at(consumer, tile_loop, preserve_unit_loops=True)
    _tile_pointwise(sch, pointwise, width)
    sch.vectorize(vector)
    for consumer in epilogue:
        sch.vectorize(sch.get_loops(consumer)[-1])
    sch.parallel(sch.fuse(*outer))
    sch.annotate(block, "pragma_auto_unroll_max_step", tvm.tirx.IntImm("int32", 16))
    sch.annotate(block, "pragma_unroll_explicit", tvm.tirx.IntImm("int32", 1))
    return [sch]


def register() -> None:
    """Make the rule known to MetaSchedule in this process (idempotent). A task whose
    block names a rule that is not registered tunes without it: TVM warns and drops it."""
    tvm.register_global_func(f"s_tir.meta_schedule.cpu.{POINTWISE_DEPTHWISE}",
                             schedule_pointwise_depthwise, override=True)


register()
