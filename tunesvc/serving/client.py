"""The client side of the protocol, as tunesvc's own tools speak it (the planner's
measurement, the serving benchmarks): where a started server listens, and an infer request
with binary tensors. Users' clients are their own (e.g. tritonclient.http)."""

from __future__ import annotations

import json
import re

import numpy as np

from tunesvc.models.inputs import made_up
from tunesvc.serving.datatypes import TO_NUMPY, datatype_of
from tunesvc.serving.protocol import HEADER_LENGTH

# The first line `tunesvc serve` prints.
LISTENING = re.compile(r"listening on http://([\d.]+):(\d+)")


def listening_address(line: str) -> tuple[str, int] | None:
    """(host, port) from `tunesvc serve`'s first line, or None if it is not that line."""
    match = LISTENING.search(line)
    return (match[1], int(match[2])) if match else None


def binary_request(arrays: dict[str, np.ndarray]) -> tuple[bytes, dict[str, str]]:
    """An infer request body (JSON header, then the tensors' bytes) and its headers."""
    tensors, blobs = [], []
    for name, array in arrays.items():
        blobs.append(np.ascontiguousarray(array).tobytes())
        tensors.append({"name": name, "shape": list(array.shape),
                        "datatype": datatype_of(array.dtype),
                        "parameters": {"binary_data_size": len(blobs[-1])}})
    head = json.dumps({"inputs": tensors}).encode()
    return head + b"".join(blobs), {HEADER_LENGTH: str(len(head))}


def made_up_inputs(metadata: dict, seed: int = 0) -> dict[str, np.ndarray]:
    """Inputs of the shapes and types a model's metadata names: standard-normal floats,
    zeros otherwise."""
    rng = np.random.default_rng(seed)
    return {info["name"]: made_up(rng, tuple(info["shape"]), TO_NUMPY[info["datatype"]])
            for info in metadata["inputs"]}
