"""The KServe / Open Inference Protocol v2 over HTTP, as JSON and with the binary-tensor
extension (`Inference-Header-Content-Length`) that `tritonclient.http` uses by default.

Parsing checks a request against the model's metadata and raises ServeError(400) with one
line naming what is wrong; it never touches a model.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from tunesvc.serving.datatypes import TO_NUMPY, datatype_of
from tunesvc.serving.errors import ServeError
from tunesvc.serving.messages import ModelMeta, TensorInfo

HEADER_LENGTH = "Inference-Header-Content-Length"
VERSION = "1"


@dataclass(frozen=True)
class InferRequest:
    """A checked request: one array per model input, in input order, and which outputs
    to send back (all when None), each as binary or JSON."""

    request_id: str | None
    arrays: tuple[np.ndarray, ...]
    outputs: tuple[tuple[str, bool], ...] | None
    binary_outputs: bool


def parse_infer(body: bytes, header_length: str | None, meta: ModelMeta,
                model: str) -> InferRequest:
    head, binary = _split(body, header_length)
    request = _json_object(head)
    given = _inputs_by_name(request, meta, model)
    arrays, used = [], 0
    for info in meta.inputs:
        array, used = _tensor(given[info.name], info, binary, used)
        arrays.append(array)
    if used != len(binary):
        raise ServeError(400, f"{len(binary) - used} bytes of binary data follow the "
                              "inputs that claim them")
    parameters = request.get("parameters") or {}
    return InferRequest(_request_id(request), tuple(arrays), _outputs(request, meta, model),
                        bool(parameters.get("binary_data_output", False)))


def encode_infer(model: str, request: InferRequest, meta: ModelMeta,
                 outputs: tuple[np.ndarray, ...]) -> tuple[bytes, dict[str, str]]:
    """The response body and its headers."""
    by_name = {info.name: array for info, array in zip(meta.outputs, outputs)}
    wanted = request.outputs or tuple((info.name, request.binary_outputs) for info in meta.outputs)
    tensors, blobs = [], []
    for name, binary in wanted:
        array = np.ascontiguousarray(by_name[name])
        tensor: dict[str, Any] = {"name": name, "datatype": datatype_of(array.dtype),
                                  "shape": list(array.shape)}
        if binary:
            blobs.append(array.tobytes())
            tensor["parameters"] = {"binary_data_size": len(blobs[-1])}
        else:
            tensor["data"] = array.ravel().tolist()
        tensors.append(tensor)
    response: dict[str, Any] = {"model_name": model, "model_version": VERSION, "outputs": tensors}
    if request.request_id is not None:
        response["id"] = request.request_id
    head = json.dumps(response).encode()
    if not blobs:
        return head, {"Content-Type": "application/json"}
    return head + b"".join(blobs), {"Content-Type": "application/octet-stream",
                                    HEADER_LENGTH: str(len(head))}


def model_metadata(model: str, meta: ModelMeta, share_percent: int) -> dict[str, Any]:
    return {"name": model, "versions": [VERSION],
            "platform": "tunesvc_tvm" if meta.engine == "tvm" else "onnxruntime_onnx",
            "inputs": [_info(i) for i in meta.inputs], "outputs": [_info(o) for o in meta.outputs],
            "parameters": {"share_percent": share_percent, "kernels": meta.kernels,
                           "cores": ",".join(map(str, meta.cores)), "pid": meta.pid}}


def _info(info: TensorInfo) -> dict[str, Any]:
    return {"name": info.name, "datatype": info.datatype, "shape": list(info.shape)}


def _split(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    if header_length is None:
        return body, b""
    try:
        length = int(header_length)
    except ValueError:
        raise ServeError(400, f"{HEADER_LENGTH} {header_length!r} is not a number") from None
    if not 0 <= length <= len(body):
        raise ServeError(400, f"{HEADER_LENGTH} {length} is beyond the body's {len(body)} bytes")
    return body[:length], body[length:]


def _json_object(head: bytes) -> dict[str, Any]:
    try:
        request = json.loads(head)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ServeError(400, f"malformed JSON: {exc}") from None
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list):
        raise ServeError(400, "the request must be a JSON object with an 'inputs' list")
    return request


def _request_id(request: dict[str, Any]) -> str | None:
    value = request.get("id")
    return None if value is None else str(value)


def _inputs_by_name(request: dict[str, Any], meta: ModelMeta, model: str) -> dict[str, dict]:
    given: dict[str, dict] = {}
    for entry in request["inputs"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ServeError(400, "each input must be an object with a 'name'")
        if entry["name"] in given:
            raise ServeError(400, f"input {entry['name']!r} is given twice")
        given[entry["name"]] = entry
    expected = [info.name for info in meta.inputs]
    unknown = sorted(set(given) - set(expected))
    missing = [name for name in expected if name not in given]
    if unknown or missing:
        what = (f"has no input {unknown[0]!r}" if unknown else f"needs input {missing[0]!r}")
        raise ServeError(400, f"model {model!r} {what}; its inputs: {', '.join(expected)}")
    return given


def _tensor(entry: dict[str, Any], info: TensorInfo, binary: bytes,
            offset: int) -> tuple[np.ndarray, int]:
    """The input's array and the binary offset after it."""
    _check_header(entry, info)
    dtype = TO_NUMPY[info.datatype]
    count = math.prod(info.shape)
    size = (entry.get("parameters") or {}).get("binary_data_size")
    if size is not None:
        if int(size) != count * dtype.itemsize or offset + int(size) > len(binary):
            raise ServeError(400, f"input {info.name!r}: binary_data_size {size} does not "
                                  f"hold {count} {info.datatype} values")
        data = np.frombuffer(binary, dtype, count, offset).reshape(info.shape)
        return data.copy(), offset + int(size)
    return _json_data(entry, info, dtype, count), offset


def _check_header(entry: dict[str, Any], info: TensorInfo) -> None:
    if entry.get("datatype") != info.datatype:
        raise ServeError(400, f"input {info.name!r} is {info.datatype}, "
                              f"got {entry.get('datatype')!r}")
    shape = entry.get("shape")
    if not isinstance(shape, list) or tuple(shape) != info.shape:
        raise ServeError(400, f"input {info.name!r} has shape {list(info.shape)}, got {shape!r}")


def _json_data(entry: dict[str, Any], info: TensorInfo, dtype: np.dtype,
               count: int) -> np.ndarray:
    if "data" not in entry:
        raise ServeError(400, f"input {info.name!r} has neither 'data' nor binary_data_size")
    try:
        flat = np.asarray(entry["data"], dtype=dtype).ravel()
    except (ValueError, TypeError) as exc:
        raise ServeError(400, f"input {info.name!r}: data is not {info.datatype}: {exc}") from None
    if flat.size != count:
        raise ServeError(400, f"input {info.name!r}: {flat.size} values for shape "
                              f"{list(info.shape)} ({count} values)")
    return flat.reshape(info.shape)


def _outputs(request: dict[str, Any], meta: ModelMeta,
             model: str) -> tuple[tuple[str, bool], ...] | None:
    asked = request.get("outputs")
    if not asked:
        return None
    known = {info.name for info in meta.outputs}
    chosen = []
    for entry in asked:
        name = entry.get("name") if isinstance(entry, dict) else None
        if name not in known:
            raise ServeError(400, f"model {model!r} has no output {name!r}; its outputs: "
                                  f"{', '.join(sorted(known))}")
        chosen.append((name, bool((entry.get("parameters") or {}).get("binary_data", False))))
    return tuple(chosen)
