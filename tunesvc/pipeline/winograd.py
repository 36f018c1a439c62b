"""Winograd convolutions: 3x3 stride-1 convolutions in fewer multiplications.

F(m x m, 3x3) computes an m x m output tile from an (m+2) x (m+2) input tile with
(m+2)^2 multiplications per channel pair instead of 9 m^2: 2.25x fewer for m=2, 4x for
m=4. The weight transform (U = G g G^T) is its own operator on the constant weight, so
constant folding does it once at compile time; the data transform, the batched matrix
product and the inverse transform are one kernel that MetaSchedule tunes, its transform
blocks marked for TVM's own Winograd schedule rules and its epilogue (bias, activation,
residual add) fused after it. Nothing here decides *whether* a convolution runs as
Winograd: `tunesvc.pipeline.conv_algorithms` does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tvm import relax, te, tirx, topi
from tvm.topi.nn.winograd_util import _cook_toom_convolution, _interpolation_points
from tvm.topi.utils import get_const_tuple

# TVM's fusion pattern kinds (relax/op_attr_types.h): the epilogue may fuse after it.
OUT_ELEMWISE_FUSABLE = 4
KERNEL = 3


@dataclass(frozen=True)
class ConvShape:
    """A channels-last convolution as Winograd sees it."""

    batch: int
    height: int
    width: int
    in_channels: int
    out_channels: int
    padding: tuple[int, int, int, int]  # top, left, bottom, right
    dtype: str


def winograd_shape(call: relax.Call) -> ConvShape | None:
    """The convolution's shape if Winograd can compute it: NHWC data, OHWI weight, 3x3,
    stride 1, dilation 1, ungrouped, static float32 shapes; else None."""
    attrs = call.attrs
    if (attrs.data_layout, attrs.kernel_layout, attrs.out_layout) != ("NHWC", "OHWI", "NHWC"):
        return None
    if attrs.groups != 1 or list(map(int, attrs.strides)) != [1, 1] \
            or list(map(int, attrs.dilation)) != [1, 1]:
        return None
    data, weight = (arg.ty for arg in call.args[:2])
    if str(data.dtype) != "float32" or str(attrs.out_dtype or "float32") not in ("", "float32"):
        return None
    try:
        batch, height, width, in_channels = (int(d) for d in data.shape)
        out_channels, kh, kw, _ = (int(d) for d in weight.shape)
    except (TypeError, ValueError):  # a symbolic dimension
        return None
    if (kh, kw) != (KERNEL, KERNEL):
        return None
    padding = tuple(int(p) for p in attrs.padding)
    return ConvShape(batch, height, width, in_channels, out_channels, padding, "float32")


def transform_matrices(tile: int, dtype: str) -> tuple[te.Tensor, te.Tensor, te.Tensor]:
    """F(tile x tile, 3x3)'s A, B and G matrices as constant tensors (TVM's Cook-Toom
    values). Each entry is a small tree of `i == row`, `j == column` selects with the
    zeros left out, rather than TOPI's chain of one select per entry (each testing two
    index remainders): the same constants once the transform loops are unrolled, but
    every pass over the kernel (the search's replays and postprocessing, the cost
    model's features, the build) simplifies an expression several times smaller."""
    points = _interpolation_points(tile + KERNEL - 2)
    a_data, b_data, g_data = _cook_toom_convolution(points, tile, KERNEL)
    return (_const_matrix(a_data.astype(dtype), "A"), _const_matrix(b_data.astype(dtype), "B"),
            _const_matrix(g_data.astype(dtype), "G"))


def _const_matrix(values: np.ndarray, name: str) -> te.Tensor:
    """`values` as a tensor computed from its indices alone (TVM's Winograd rules inline it)."""
    dtype = str(values.dtype)
    zero = tirx.const(0.0, dtype)

    def entry(i: tirx.PrimExpr, j: tirx.PrimExpr) -> tirx.PrimExpr:
        expr = zero
        for row in reversed(range(values.shape[0])):
            in_row = zero
            for col in reversed(range(values.shape[1])):
                if values[row, col] != 0:
                    in_row = tirx.Select(j == col, tirx.const(values[row, col], dtype), in_row)
            expr = tirx.Select(i == row, in_row, expr)
        return expr

    return te.compute(values.shape, entry, name=name,
                      attrs={"const_matrix": True, "schedule_rule": "None"})


def weight_transform(kernel: te.Tensor, tile: int) -> te.Tensor:
    """OHWI weight -> U[eps, nu, ci, co] = G g G^T (output channels innermost, so the
    batched product reads it contiguously)."""
    out_channels, _, _, in_channels = get_const_tuple(kernel.shape)
    alpha = tile + KERNEL - 1
    _, _, g_matrix = transform_matrices(tile, str(kernel.dtype))
    r_kh = te.reduce_axis((0, KERNEL), name="r_kh")
    r_kw = te.reduce_axis((0, KERNEL), name="r_kw")
    return te.compute(
        (alpha, alpha, in_channels, out_channels),
        lambda eps, nu, ci, co: te.sum(
            kernel[co, r_kh, r_kw, ci] * g_matrix[eps, r_kh] * g_matrix[nu, r_kw],
            axis=[r_kh, r_kw]),
        name="winograd_weight",
    )


@dataclass(frozen=True)
class Tiling:
    """How an output is cut into tile x tile blocks: output size and tiles per image."""

    tile: int
    out_h: int
    out_w: int
    tiles_h: int
    tiles_w: int

    @classmethod
    def of(cls, shape: ConvShape, tile: int) -> Tiling:
        pad_t, pad_l, pad_b, pad_r = shape.padding
        out_h = shape.height + pad_t + pad_b - KERNEL + 1
        out_w = shape.width + pad_l + pad_r - KERNEL + 1
        return cls(tile, out_h, out_w, (out_h + tile - 1) // tile, (out_w + tile - 1) // tile)

    @property
    def alpha(self) -> int:
        return self.tile + KERNEL - 1


def winograd_conv(data: te.Tensor, packed: te.Tensor, shape: ConvShape,
                  tile: int) -> te.Tensor:
    """NHWC data and a transformed weight -> NHWC output, as TVM's NHWC Winograd compute
    (the block names and `schedule_rule` marks its CPU rules expect) with the weight
    transform taken out."""
    cut = Tiling.of(shape, tile)
    tiles = shape.batch * cut.tiles_h * cut.tiles_w
    data_pack = _data_pack(_input_tiles(data, shape, cut), cut.alpha, shape.dtype)
    ci = te.reduce_axis((0, shape.in_channels), name="ci")
    bgemm = te.compute(
        (cut.alpha, cut.alpha, tiles, shape.out_channels),
        lambda eps, nu, p, co: te.sum(data_pack[eps, nu, p, ci] * packed[eps, nu, ci, co],
                                      axis=[ci]),
        name="bgemm")
    return _inverse(bgemm, shape, cut)


def _input_tiles(data: te.Tensor, shape: ConvShape, cut: Tiling) -> te.Tensor:
    """The (alpha x alpha) input tile of every output tile, padded where it overhangs."""
    pad_t, pad_l, pad_b, pad_r = shape.padding
    # enough padding that every tile reads inside the padded input
    extra_h = (cut.tiles_h - 1) * cut.tile + cut.alpha - (shape.height + pad_t + pad_b)
    extra_w = (cut.tiles_w - 1) * cut.tile + cut.alpha - (shape.width + pad_l + pad_r)
    data_pad = topi.nn.pad(data, (0, pad_t, pad_l, 0),
                           (0, pad_b + max(0, extra_h), pad_r + max(0, extra_w), 0),
                           name="data_pad", attrs={"schedule_rule": "None"})
    per_image = cut.tiles_h * cut.tiles_w
    return te.compute(
        (cut.alpha, cut.alpha, shape.batch * per_image, shape.in_channels),
        lambda eps, nu, p, ci: data_pad[p // per_image,
                                        ((p // cut.tiles_w) % cut.tiles_h) * cut.tile + eps,
                                        (p % cut.tiles_w) * cut.tile + nu, ci],
        name="input_tile", attrs={"schedule_rule": "None"})


def _data_pack(input_tile: te.Tensor, alpha: int, dtype: str) -> te.Tensor:
    """V = B^T d B for every input tile."""
    _, b_matrix, _ = transform_matrices(alpha - KERNEL + 1, dtype)
    r_a = te.reduce_axis((0, alpha), "r_a")
    r_b = te.reduce_axis((0, alpha), "r_b")
    return te.compute(
        input_tile.shape,
        lambda eps, nu, p, ci: te.sum(
            input_tile[r_a, r_b, p, ci] * b_matrix[r_a, eps] * b_matrix[r_b, nu],
            axis=[r_a, r_b]),
        name="data_pack", attrs={"schedule_rule": "conv2d_nhwc_winograd_data_pack"})


def _inverse(bgemm: te.Tensor, shape: ConvShape, cut: Tiling) -> te.Tensor:
    """Y = A^T M A per tile, then the tiles laid out as the NHWC output."""
    a_matrix, _, _ = transform_matrices(cut.tile, shape.dtype)
    r_a = te.reduce_axis((0, cut.alpha), "r_a")
    r_b = te.reduce_axis((0, cut.alpha), "r_b")
    inverse = te.compute(
        (cut.tile, cut.tile, bgemm.shape[2], shape.out_channels),
        lambda vh, vw, p, co: te.sum(
            bgemm[r_a, r_b, p, co] * a_matrix[r_a, vh] * a_matrix[r_b, vw], axis=[r_a, r_b]),
        name="inverse", attrs={"schedule_rule": "conv2d_nhwc_winograd_inverse"})
    per_image = cut.tiles_h * cut.tiles_w
    return te.compute(
        (shape.batch, cut.out_h, cut.out_w, shape.out_channels),
        lambda n, h, w, co: inverse[h % cut.tile, w % cut.tile,
                                    n * per_image + (h // cut.tile) * cut.tiles_w
                                    + w // cut.tile, co],
        name="conv2d_winograd")


def emit_winograd(bb: relax.BlockBuilder, call: relax.Call, shape: ConvShape,
                  tile: int) -> relax.Expr:
    """The two operators replacing `call`: the weight transform (folded when the weight
    is constant) and the Winograd kernel, marked so its epilogue fuses after it."""
    data, weight = call.args[:2]
    packed = bb.emit(bb.call_te(weight_transform, weight, tile,
                                primfunc_name_hint=f"winograd{tile}_weight"))
    conv = bb.call_te(lambda x, u: winograd_conv(x, u, shape, tile), data, packed,
                      primfunc_name_hint=f"winograd{tile}_conv2d")
    gvar = conv.args[0]
    bb.update_func(gvar, bb.get()[gvar].with_attr("op_pattern", OUT_ELEMWISE_FUSABLE))
    return conv
