"""KServe v2 datatype names and NumPy dtypes, both ways."""

from __future__ import annotations

import numpy as np

TO_NUMPY: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_), "UINT8": np.dtype(np.uint8), "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32), "UINT64": np.dtype(np.uint64), "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16), "INT32": np.dtype(np.int32), "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16), "FP32": np.dtype(np.float32), "FP64": np.dtype(np.float64),
}
FROM_NUMPY: dict[np.dtype, str] = {dtype: name for name, dtype in TO_NUMPY.items()}


def datatype_of(dtype: np.dtype | str) -> str:
    """'FP32' for float32; ValueError for a dtype the protocol has no name for."""
    found = FROM_NUMPY.get(np.dtype(dtype))
    if found is None:
        raise ValueError(f"no KServe datatype for {np.dtype(dtype)}")
    return found
