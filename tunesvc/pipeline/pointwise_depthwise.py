"""A pointwise (1x1) convolution, what comes after it (bias, activation), and the depthwise
convolution that reads it, computed as one kernel.

In an inverted-residual block the 1x1 expansion writes a tensor six times wider than its
input and the depthwise convolution reads it straight back; as one kernel the expanded
values of a tile are made where they are used and never stored whole. The weights come in
the layouts the kernel reads (pointwise [in, out], depthwise [kh, kw, channels]), which
the caller makes from the constant weights at compile time. The depthwise block is marked
for the schedule rule in `workers.fused_rules`; the pointwise block is left to that rule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tvm import te, tirx

from workers.fused_rules import POINTWISE_DEPTHWISE


# What the depthwise convolution reads, from a pointwise value and its channel (the bias
# and activation between the two).
Between = Callable[[tirx.Expr, tirx.Var], tirx.Expr]


@dataclass(frozen=True)
class PointwiseDepthwise:
    """The depthwise convolution's stride and padding (top, left, bottom, right)."""

    stride: int
    padding: tuple[int, int, int, int]

    def out_size(self, size: int, kernel: int, before: int, after: int) -> int:
        return (size + before + after - kernel) // self.stride + 1


def pointwise_depthwise(data: te.Tensor, pointwise_weight: te.Tensor,
                        depthwise_weight: te.Tensor, pair: PointwiseDepthwise,
                        between: Between) -> te.Tensor:
    """NHWC `data` [n, h, w, in] -> the depthwise output [n, oh, ow, channels]."""
    batch, height, width, in_channels = (int(d) for d in data.shape)
    kernel_h, kernel_w, channels = (int(d) for d in depthwise_weight.shape)
    reduce_in = te.reduce_axis((0, in_channels), "reduce_in")
    pointwise = te.compute(
        (batch, height, width, channels),
        lambda n, h, w, c: te.sum(data[n, h, w, reduce_in] * pointwise_weight[reduce_in, c],
                                  axis=reduce_in),
        name="pointwise", attrs={"schedule_rule": "None"})
    pad_t, pad_l, pad_b, pad_r = pair.padding

    def expanded(n: tirx.Var, h: tirx.Expr, w: tirx.Expr, c: tirx.Var) -> tirx.Expr:
        inside = tirx.all(h >= 0, h < height, w >= 0, w < width)
        value = between(pointwise[n, h, w, c], c)
        return tirx.if_then_else(inside, value, tirx.const(0.0, data.dtype))

    reduce_h = te.reduce_axis((0, kernel_h), "reduce_h")
    reduce_w = te.reduce_axis((0, kernel_w), "reduce_w")
    out_h = pair.out_size(height, kernel_h, pad_t, pad_b)
    out_w = pair.out_size(width, kernel_w, pad_l, pad_r)
    return te.compute(
        (batch, out_h, out_w, channels),
        lambda n, oh, ow, c: te.sum(
            expanded(n, oh * pair.stride + reduce_h - pad_t, ow * pair.stride + reduce_w - pad_l, c)
            * depthwise_weight[reduce_h, reduce_w, c], axis=[reduce_h, reduce_w]),
        name="depthwise", attrs={"schedule_rule": POINTWISE_DEPTHWISE})
