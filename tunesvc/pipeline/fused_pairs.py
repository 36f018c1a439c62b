"""Where a Relax graph has a 1x1 convolution whose only reader, through elementwise
operators with constant operands, is a depthwise convolution; and the one call that
computes such a pair (`tunesvc.pipeline.pointwise_depthwise`).

Read on the channels-last graph (NHWC data, OHWI weights) before legalization. The
elementwise chain is carried over as it is (bias add, relu, and relu6 as tunesvc's Clip
preparation writes it, `6 - relu(6 - relu(x))`), so whatever the model computes between
the two convolutions the fused kernel computes too. float32 only. Which pairs run fused is
decided per pair by measurement (`tunesvc.pipeline.conv_algorithms`).
"""

from __future__ import annotations

from dataclasses import dataclass

import tvm
from tvm import relax, te, tirx

from tunesvc.pipeline.pointwise_depthwise import (Between, PointwiseDepthwise,
                                                  pointwise_depthwise)
from tunesvc.pipeline.winograd import OUT_ELEMWISE_FUSABLE

CONV = "relax.nn.conv2d"
ELEMENTWISE = {"relax.add": lambda a, b: a + b, "relax.subtract": lambda a, b: a - b,
               "relax.multiply": lambda a, b: a * b}
RELU = "relax.nn.relu"
STATIC = (relax.ShapeExpr,)  # known when compiling
CONSTANT_DEPTH = 8


@dataclass(frozen=True)
class Step:
    """One elementwise operator between the two convolutions; `constant` is its other
    operand (None for relu), `constant_first` whether it is the left one."""

    op: str
    constant: relax.Expr | None = None
    constant_first: bool = False


@dataclass(frozen=True)
class Pair:
    """A fusable pair: the depthwise convolution's call, and what the fused call reads."""

    depthwise: relax.Call
    data: relax.Expr
    pointwise_weight: relax.Expr
    steps: tuple[Step, ...]
    shape: PointwiseDepthwise


def _op_name(expr: relax.Expr) -> str | None:
    if isinstance(expr, relax.Call) and hasattr(expr.op, "name"):
        return str(expr.op.name)
    return None


def _is_nhwc(call: relax.Call) -> bool:
    """NHWC float32 data, OHWI weights, no dilation."""
    attrs = call.attrs
    if str(getattr(call.args[0].ty, "dtype", "")) != "float32":
        return False
    return (attrs.data_layout, attrs.kernel_layout, str(attrs.out_layout or "NHWC")) == \
        ("NHWC", "OHWI", "NHWC") and list(map(int, attrs.dilation)) == [1, 1]


def _static_shape(expr: relax.Expr) -> list[int] | None:
    try:
        return [int(d) for d in expr.ty.shape]
    except (AttributeError, TypeError, ValueError):
        return None


def _is_depthwise(call: relax.Call) -> bool:
    if _op_name(call) != CONV:
        return False
    weight = _static_shape(call.args[1])
    return _is_nhwc(call) and weight is not None \
        and weight[1:] == [3, 3, 1] and int(call.attrs.groups) == weight[0] > 1 \
        and len(set(map(int, call.attrs.strides))) == 1


def _is_pointwise(call: relax.Call) -> bool:
    if _op_name(call) != CONV:
        return False
    weight = _static_shape(call.args[1])
    return _is_nhwc(call) and weight is not None \
        and weight[1:3] == [1, 1] and int(call.attrs.groups) == 1 \
        and list(map(int, call.attrs.strides)) == [1, 1] \
        and not any(int(p) for p in call.attrs.padding)


def _is_constant(expr: relax.Expr, values: dict[relax.Var, relax.Expr],
                 depth: int = CONSTANT_DEPTH) -> bool:
    """Whether `expr` is made of constants only (FoldConstant makes it one), within
    `depth` operators of them: a weight's layout changes are a few; a whole network is not."""
    if isinstance(expr, (tvm.ir.expr.Constant, *STATIC)):
        return True
    if depth == 0:
        return False
    if isinstance(expr, relax.Var):
        return expr in values and _is_constant(values[expr], values, depth - 1)
    if isinstance(expr, relax.Call):
        return all(_is_constant(arg, values, depth - 1) for arg in expr.args)
    return False


def _broadcasts_per_channel(expr: relax.Expr, channels: int) -> bool:
    shape = _static_shape(expr)
    return shape is not None and all(d == 1 for d in shape[:-1]) \
        and (not shape or shape[-1] in (1, channels))


def _step(value: relax.Call, values: dict, channels: int) -> tuple[Step, relax.Expr] | None:
    """The step `value` is and the operand the chain goes on through; None if it is not
    an elementwise operator with one constant, per-channel or scalar operand."""
    name = _op_name(value)
    if name == RELU:
        return Step(RELU), value.args[0]
    if name not in ELEMENTWISE:
        return None
    left, right = value.args
    for constant, other, first in ((right, left, False), (left, right, True)):
        if _is_constant(constant, values) and _broadcasts_per_channel(constant, channels):
            return Step(name, constant, first), other
    return None


def _chain(start: relax.Expr, values: dict, users: dict,
           channels: int) -> tuple[relax.Call, tuple[Step, ...]] | None:
    """From the depthwise convolution's input back to a 1x1 convolution read by nothing
    else: (that convolution, the steps between, in order)."""
    steps: list[Step] = []
    expr = start
    while isinstance(expr, relax.DataflowVar) and len(users.get(expr, [])) == 1:
        value = values.get(expr)
        if isinstance(value, relax.Call) and _is_pointwise(value) \
                and _is_constant(value.args[1], values):
            return value, tuple(reversed(steps))
        found = _step(value, values, channels) if isinstance(value, relax.Call) else None
        if found is None:
            return None
        steps.append(found[0])
        expr = found[1]
    return None


def find_pairs(func: relax.Function) -> list[Pair]:
    """Every fusable pair of `func`, in the order of its bindings."""
    pairs = []
    for block in func.body.blocks:
        if not isinstance(block, relax.DataflowBlock):
            continue
        values = {b.var: b.value for b in block.bindings if isinstance(b, relax.VarBinding)}
        users = relax.analysis.udchain(block)
        for call in values.values():
            if not (isinstance(call, relax.Call) and _is_depthwise(call)):
                continue
            channels = int(call.attrs.groups)
            found = _chain(call.args[0], values, users, channels)
            if found is not None:
                pointwise, steps = found
                shape = PointwiseDepthwise(int(call.attrs.strides[0]),
                                           tuple(int(p) for p in call.attrs.padding))
                pairs.append(Pair(call, pointwise.args[0], pointwise.args[1], steps, shape))
    return pairs


def _weights_as_read(bb: relax.BlockBuilder, pair: Pair) -> tuple[relax.Expr, relax.Expr]:
    """The OHWI weights in the layouts the fused kernel reads: pointwise [in, out],
    depthwise [kh, kw, channels] (constant weights: folded at compile time)."""
    channels, _, _, in_channels = _static_shape(pair.pointwise_weight)
    _, kernel_h, kernel_w, _ = _static_shape(pair.depthwise.args[1])
    pointwise = bb.emit(bb.call_te(
        lambda w: te.compute((in_channels, channels), lambda k, c: w[c, 0, 0, k]),
        pair.pointwise_weight, primfunc_name_hint="pointwise_weight_layout"))
    depthwise = bb.emit(bb.call_te(
        lambda w: te.compute((kernel_h, kernel_w, channels), lambda r, s, c: w[c, r, s, 0]),
        pair.depthwise.args[1], primfunc_name_hint="depthwise_weight_layout"))
    return pointwise, depthwise


def _at_channel(tensor: te.Tensor, channel: tirx.Var) -> tirx.Expr:
    """A scalar or per-channel constant's value at `channel` (shapes [], [C], [1, 1, 1, C])."""
    if not tensor.shape:
        return tensor()
    last = channel if int(tensor.shape[-1]) > 1 else 0
    return tensor[(*([0] * (len(tensor.shape) - 1)), last)]


def _between(steps: tuple[Step, ...], constants: list[te.Tensor]) -> Between:
    def apply(value: tirx.Expr, channel: tirx.Var) -> tirx.Expr:
        given = iter(constants)
        for step in steps:
            if step.op == RELU:
                value = te.max(value, tirx.const(0.0, "float32"))
                continue
            constant = _at_channel(next(given), channel)
            left, right = (constant, value) if step.constant_first else (value, constant)
            value = ELEMENTWISE[step.op](left, right)
        return value

    return apply


def emit_pair(bb: relax.BlockBuilder, pair: Pair) -> relax.Expr:
    """The call computing `pair` (it replaces the depthwise call; the 1x1 convolution and
    the steps between are then unused), marked so its epilogue fuses after it."""
    pointwise_weight, depthwise_weight = _weights_as_read(bb, pair)
    constants = [step.constant for step in pair.steps if step.constant is not None]

    def compute(data: te.Tensor, w1: te.Tensor, w2: te.Tensor, *given: te.Tensor) -> te.Tensor:
        return pointwise_depthwise(data, w1, w2, pair.shape, _between(pair.steps, list(given)))

    call = bb.call_te(compute, pair.data, pointwise_weight, depthwise_weight, *constants,
                      primfunc_name_hint="pointwise_depthwise")
    gvar = call.args[0]
    bb.update_func(gvar, bb.get()[gvar].with_attr("op_pattern", OUT_ELEMWISE_FUSABLE))
    return call
