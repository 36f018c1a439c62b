"""The fused pointwise + depthwise kernel's schedule rule: every sample it draws is a
valid schedule, with the pointwise values made inside the depthwise tiles. (The tuned
kernel's values are checked against numpy by a small run of
scripts/bench_pointwise_depthwise.py in tests/cli/test_bench_scripts.py.)"""

from __future__ import annotations

import pytest
import tvm
from tvm import te
from tvm.s_tir import Schedule

from tunesvc.pipeline.pointwise_depthwise import PointwiseDepthwise, pointwise_depthwise
from workers.fused_rules import schedule_pointwise_depthwise

SAMPLES = 25


def _fused(size: int, c_in: int, channels: int, stride: int) -> tvm.IRModule:
    data = te.placeholder((1, size, size, c_in), name="data")
    pointwise_weight = te.placeholder((c_in, channels), name="pointwise_weight")
    bias = te.placeholder((channels,), name="bias")
    depthwise_weight = te.placeholder((3, 3, channels), name="depthwise_weight")
    pair = PointwiseDepthwise(stride, (1, 1, 1, 1), (0.0, 6.0))
    out = pointwise_depthwise(data, pointwise_weight, bias, depthwise_weight, pair)
    epilogue = te.compute(out.shape, lambda n, h, w, c: te.max(out[n, h, w, c], 0.0))
    return tvm.IRModule({"main": te.create_prim_func(
        [data, pointwise_weight, bias, depthwise_weight, epilogue])})


@pytest.mark.parametrize("shape", [(12, 8, 48, 1), (12, 8, 24, 2), (9, 5, 20, 1), (7, 3, 7, 2)],
                         ids=["16-lanes-s1", "8-lanes-s2", "4-lanes-odd-size", "no-lanes"])
def test_every_sample_schedules_the_pair_inside_the_depthwise_tiles(shape: tuple) -> None:
    mod = _fused(*shape)
    for seed in range(1, SAMPLES + 1):
        sch = Schedule(mod, seed=seed)
        schedule_pointwise_depthwise(sch, sch.get_sblock("depthwise"))
        pointwise_loops = sch.get_loops(sch.get_sblock("pointwise"))
        depthwise_loops = sch.get_loops(sch.get_sblock("depthwise"))
        # the pointwise block sits under the depthwise block's parallel and channel-tile loops
        assert all(sch.get(a).same_as(sch.get(b))
                   for a, b in zip(pointwise_loops[:2], depthwise_loops[:2])), seed
        assert "parallel" in str(sch.mod) and "vectorized" in str(sch.mod)
