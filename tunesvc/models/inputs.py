"""The inputs a model is run on: made up from its declared shapes and types, or read from
a user's `.npz` file (names to arrays), so models with index, flag or sample-rate inputs
are checked on meaningful data.

Made-up inputs: floating point inputs are standard-normal (fixed seed); integer and
boolean inputs are zeros (a valid index, length or flag for most models).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from tunesvc.errors import UserError
from tunesvc.models.base import LoadedModel


def model_inputs(model: LoadedModel, inputs_file: Path | None = None) -> list[np.ndarray]:
    """One array per input, in input order: from `inputs_file` if given, else made up."""
    if inputs_file is None:
        return sample_inputs(model)
    return read_inputs(inputs_file, model)


def sample_inputs(model: LoadedModel, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [made_up(rng, shape, np.dtype(model.input_dtypes.get(name, "float32")))
            for name, shape in model.input_shapes.items()]


def made_up(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """The one rule for an input nobody gave: standard-normal floats, zeros otherwise."""
    if dtype.kind in "fc":
        return rng.standard_normal(shape).astype(dtype)
    return np.zeros(shape, dtype)


def read_inputs(path: Path, model: LoadedModel) -> list[np.ndarray]:
    """The arrays of `path` for `model`'s inputs; UserError if any is missing or does not
    fit (shape, or a type that cannot be cast safely)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise UserError(f"--inputs {path}: not a readable .npz file ({exc})") from None
    missing = [name for name in model.input_shapes if name not in arrays]
    if missing:
        raise UserError(f"--inputs {path} has no array for input(s) {', '.join(missing)} "
                        f"(it has: {', '.join(arrays) or 'nothing'})")
    return [_fit(path, name, arrays[name], shape, np.dtype(model.input_dtypes[name]))
            for name, shape in model.input_shapes.items()]


def _fit(path: Path, name: str, array: np.ndarray, shape: tuple[int, ...],
         dtype: np.dtype) -> np.ndarray:
    if array.shape != shape:
        raise UserError(f"--inputs {path}: {name!r} has shape {array.shape}; the model is "
                        f"loaded with {shape} (set it with --input-shape)")
    if not np.can_cast(array.dtype, dtype, casting="same_kind"):
        raise UserError(f"--inputs {path}: {name!r} is {array.dtype}; the model takes {dtype}")
    return np.asarray(array.astype(dtype, copy=False), order="C")
