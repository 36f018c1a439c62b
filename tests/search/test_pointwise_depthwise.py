"""The fused pointwise + depthwise kernel: where a graph has such pairs, the call that
replaces one (computing what onnxruntime computes), and its schedule rule (every sample a
valid schedule with the pointwise values made inside the depthwise tiles). The tuned
kernel's values are checked against numpy by a small run of
scripts/bench_pointwise_depthwise.py in tests/cli/test_bench_scripts.py."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
import tvm
from tvm import relax, te
from tvm.relax.transform.legalize_ops.nn import _nn_conv2d
from tvm.s_tir import Schedule

from tunesvc.evaluation.reference import compare, reference_outputs
from tunesvc.models.inputs import sample_inputs
from tunesvc.models.sources import load_model
from tunesvc.models.zoo import INPUT_NAME, GraphBuilder
from tunesvc.pipeline.fused_pairs import emit_pair, find_pairs
from tunesvc.pipeline.importer import channels_last, to_relax
from tunesvc.pipeline.pointwise_depthwise import PointwiseDepthwise, pointwise_depthwise
from tunesvc.targets import TargetSpec
from workers.fused_rules import schedule_pointwise_depthwise
from workers.shares import Share

SAMPLES = 25


def _fused(size: int, c_in: int, channels: int, stride: int) -> tvm.IRModule:
    data = te.placeholder((1, size, size, c_in), name="data")
    pointwise_weight = te.placeholder((c_in, channels), name="pointwise_weight")
    bias = te.placeholder((channels,), name="bias")
    depthwise_weight = te.placeholder((3, 3, channels), name="depthwise_weight")
    pair = PointwiseDepthwise(stride, (1, 1, 1, 1))
    out = pointwise_depthwise(data, pointwise_weight, depthwise_weight, pair,
                              lambda value, c: te.max(value + bias[c], 0.0))
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


def _pair_model(stride: int) -> onnx.ModelProto:
    """1x1 8->24 + bias + relu6, then a 3x3 depthwise convolution + bias + relu6."""
    g = GraphBuilder(seed=7)
    y = g.relu6(g.conv(INPUT_NAME, 8, 24, 1))
    y = g.relu6(g.conv(y, 24, 24, 3, stride, groups=24))
    size = 10 // stride
    return g.model("pair", (1, 8, 10, 10), y, (1, 24, size, size))


def _channels_last(source: str) -> tuple[tvm.IRModule, object]:
    loaded = load_model(source)
    target = TargetSpec("cpu").for_share(Share("cpu", 50))
    with target, tvm.transform.PassContext(opt_level=3):
        return channels_last(to_relax(loaded)), loaded


def test_mobilenet_v2_has_a_fusable_pair_per_expanding_block() -> None:
    mod, _ = _channels_last("zoo:mobilenet_v2")
    pairs = find_pairs(mod["main"])
    # 17 inverted-residual blocks; the first has no 1x1 expansion before its depthwise one
    assert len(pairs) == 16
    assert sorted(p.shape.stride for p in pairs).count(2) == 4
    # relu6 as tunesvc prepares it for TVM: 6 - relu(6 - relu(conv + bias))
    assert [s.op.rsplit(".", 1)[-1] for s in pairs[0].steps] == \
        ["add", "relu", "subtract", "relu", "subtract"]


@pytest.mark.parametrize("stride", [1, 2])
def test_the_fused_call_computes_what_onnxruntime_does(stride: int, tmp_path: Path) -> None:
    path = tmp_path / "pair.onnx"
    onnx.save(_pair_model(stride), path)
    mod, loaded = _channels_last(str(path))
    (pair,) = find_pairs(mod["main"])

    def legalize(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
        if call.args[0].same_as(pair.depthwise.args[0]):
            return emit_pair(bb, pair)
        return _nn_conv2d(bb, call)

    target = TargetSpec("cpu").for_share(Share("cpu", 50))
    with target, tvm.transform.PassContext(opt_level=3):
        fused = relax.transform.LegalizeOps({"relax.nn.conv2d": legalize})(mod)
        fused = relax.transform.DeadCodeElimination()(fused)
        assert _convolutions_left(fused) == 0  # the 1x1 one is gone with the depthwise one
        executable = relax.build(fused, target=target)
    inputs = sample_inputs(loaded)
    vm = relax.VirtualMachine(executable, tvm.cpu())
    (got,) = [vm["main"](*[tvm.runtime.tensor(x) for x in inputs]).numpy()]
    (want,) = reference_outputs(loaded, inputs)
    assert compare([got], [want]).ok


def _convolutions_left(mod: tvm.IRModule) -> int:
    return sum("conv2d" in str(gv.name_hint) for gv in mod.functions)
