"""Scalar inputs fixed to a value (`--input-value NAME=VALUE`): a sample rate, a mode flag.

The model is then compiled for that value (the input becomes a constant, and branches on
it are decided: `tunesvc.models.onnx.if_nodes`); onnxruntime still runs the graph as given, fed the
value, so every run checks the specialization.
"""

from __future__ import annotations

import numpy as np
import onnx

from tunesvc.errors import UserError

_TRUE, _FALSE = {"1", "true", "yes"}, {"0", "false", "no"}


def fixed_values(inputs: list[onnx.ValueInfoProto], given: dict[str, str],
                 source: str) -> dict[str, np.ndarray]:
    """The arrays for the inputs named in `given`; UserError for an unknown or non-scalar
    input, or a value its type cannot hold."""
    by_name = {value.name: value for value in inputs}
    unknown = sorted(set(given) - set(by_name))
    if unknown:
        raise UserError(f"{source} has no input named {unknown}; its inputs: "
                        f"{', '.join(by_name)}")
    return {name: _value(by_name[name], text, source) for name, text in given.items()}


def _value(input_info: onnx.ValueInfoProto, text: str, source: str) -> np.ndarray:
    tensor = input_info.type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
    if any(d != 1 for d in dims):
        raise UserError(f"--input-value fixes scalar inputs only; {input_info.name!r} of "
                        f"{source} has shape {dims}")
    dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type)
    return np.full([1] * len(dims), _parse(text, dtype, input_info.name), dtype)


def _parse(text: str, dtype: np.dtype, name: str) -> bool | int | float:
    try:
        if dtype.kind == "b":
            lowered = text.lower()
            if lowered not in _TRUE | _FALSE:
                raise ValueError(text)
            return lowered in _TRUE
        if dtype.kind in "iu":
            value = int(text)
            np.array(value, dtype)  # out of the type's range: OverflowError
            return value
        return float(text)
    except (ValueError, OverflowError):
        raise UserError(f"--input-value {name}={text}: not a value of type {dtype.name}") from None
