"""Model sources: zoo names, ONNX files, input shapes; each mistake is a UserError."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from tunesvc.errors import UserError
from tunesvc.models.sources import load_model, parse_input_shape


def test_zoo_models_take_the_input_shape_asked_for() -> None:
    model = load_model("zoo:resnet18", {"input": (2, 3, 64, 64)})
    assert model.input_shapes == {"input": (2, 3, 64, 64)}
    assert load_model("zoo:mlp").input_shapes == {"input": (8, 64)}
    assert model.fingerprint != load_model("zoo:resnet18").fingerprint


def test_parse_input_shape() -> None:
    assert parse_input_shape("x:1x3x224x224") == ("x", (1, 3, 224, 224))
    # names TensorFlow exporters write hold a colon of their own
    assert parse_input_shape("serving_default_input_2:0:1x43844x1") == (
        "serving_default_input_2:0", (1, 43844, 1))
    for bad in ("x", "x:", "x:1x", "x:0x3", ":1x2"):
        with pytest.raises(UserError):
            parse_input_shape(bad)


def _dynamic_onnx(path: Path) -> Path:
    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [16, "n"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [16, "n"])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_dynamic_dimensions_need_an_input_shape(tmp_path: Path) -> None:
    path = _dynamic_onnx(tmp_path / "dyn.onnx")
    with pytest.raises(UserError, match="--input-shape x:16x1$"):  # the hint is accepted
        load_model(str(path))
    assert load_model(str(path), {"x": (16, 4)}).input_shapes == {"x": (16, 4)}
    with pytest.raises(UserError, match="only its dynamic"):
        load_model(str(path), {"x": (8, 4)})
    with pytest.raises(UserError, match="no input named"):
        load_model(str(path), {"nope": (16, 4)})


def test_bad_model_sources(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        load_model(str(tmp_path / "missing.onnx"))
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00\x01not a protobuf")
    with pytest.raises(UserError, match="not a valid ONNX model"):
        load_model(str(garbage))
    with pytest.raises(UserError, match="unknown zoo model"):
        load_model("zoo:alexnet")
