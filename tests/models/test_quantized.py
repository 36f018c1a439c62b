"""Quantized models as onnxruntime's own quantizers write them (dynamic: DynamicQuantizeLinear
with MatMulInteger or ConvInteger; static: QDQ and QOperator formats), built here from small
float models, imported by TVM and checked against onnxruntime within the tolerance derived
for them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                      quantize_dynamic, quantize_static)

from tests.conftest import tunesvc
from tunesvc.models.onnx.quantized import quantized_operators

pytestmark = pytest.mark.slow  # each compiles a model with TVM


def _weight(rng: np.random.Generator, name: str, shape: list[int]) -> onnx.TensorProto:
    return numpy_helper.from_array((rng.standard_normal(shape) * 0.3).astype(np.float32), name)


def _mlp(rng: np.random.Generator) -> onnx.GraphProto:
    nodes = [helper.make_node("MatMul", ["x", "W1"], ["m1"]),
             helper.make_node("Add", ["m1", "b1"], ["a1"]),
             helper.make_node("Relu", ["a1"], ["r1"]),
             helper.make_node("MatMul", ["r1", "W2"], ["m2"]),
             helper.make_node("Add", ["m2", "b2"], ["y"])]
    return helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 8])],
        [_weight(rng, "W1", [16, 32]), _weight(rng, "b1", [32]), _weight(rng, "W2", [32, 8]),
         _weight(rng, "b2", [8])])


def _convnet(rng: np.random.Generator) -> onnx.GraphProto:
    nodes = [helper.make_node("Conv", ["x", "C1", "c1b"], ["c1"], pads=[1, 1, 1, 1],
                              kernel_shape=[3, 3]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "C2", "c2b"], ["y"], kernel_shape=[1, 1])]
    return helper.make_graph(
        nodes, "convnet", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 16, 16])],
        [_weight(rng, "C1", [8, 3, 3, 3]), _weight(rng, "c1b", [8]),
         _weight(rng, "C2", [4, 8, 1, 1]), _weight(rng, "c2b", [4])])


def _lstm(rng: np.random.Generator) -> onnx.GraphProto:
    """x [5 steps, batch 1, 8] -> bidirectional LSTM (hidden 6): Y [5, 2, 1, 6]."""
    node = helper.make_node("LSTM", ["x", "W", "R", "B"], ["y"], hidden_size=6,
                            direction="bidirectional")
    return helper.make_graph(
        [node], "lstm", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [5, 1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [5, 2, 1, 6])],
        [_weight(rng, "W", [2, 24, 8]), _weight(rng, "R", [2, 24, 6]),
         _weight(rng, "B", [2, 48])])


FLOAT_MODELS: dict[str, Callable[[np.random.Generator], onnx.GraphProto]] = {
    "mlp": _mlp, "convnet": _convnet, "lstm": _lstm}


class _Calibration(CalibrationDataReader):
    def __init__(self, shape: list[int]) -> None:
        rng = np.random.default_rng(1)
        self._feeds = iter([{"x": rng.standard_normal(shape).astype(np.float32)}
                            for _ in range(8)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


def _float_model(folder: Path, name: str) -> tuple[Path, list[int]]:
    graph = FLOAT_MODELS[name](np.random.default_rng(0))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = folder / f"{name}.onnx"
    onnx.save(model, path)
    shape = [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    return path, shape


def _quantized(folder: Path, name: str, how: str) -> Path:
    source, shape = _float_model(folder, name)
    out = folder / f"{name}-{how}.onnx"
    if how == "dynamic":
        quantize_dynamic(source, out, weight_type=QuantType.QUInt8)
    else:
        quantize_static(source, out, _Calibration(shape), per_channel=True,
                        quant_format=QuantFormat.QDQ if how == "qdq" else QuantFormat.QOperator)
    return out


def _ops(path: Path) -> set[str]:
    return {node.op_type for node in onnx.load(path).graph.node}


@pytest.mark.parametrize("name,how,expected_op", [
    ("mlp", "dynamic", "MatMulInteger"), ("convnet", "dynamic", "ConvInteger"),
    ("lstm", "dynamic", "DynamicQuantizeLSTM"),
    ("mlp", "qdq", "QuantizeLinear"), ("convnet", "qdq", "QuantizeLinear"),
    ("mlp", "qoperator", "QLinearMatMul"), ("convnet", "qoperator", "QLinearConv")])
def test_quantized_model_runs_and_matches_onnxruntime(tmp_path: Path, tunesvc_env: dict,
                                                     name: str, how: str,
                                                     expected_op: str) -> None:
    path = _quantized(tmp_path, name, how)
    assert expected_op in _ops(path)  # the quantizer wrote what the test is about
    done = tunesvc("run", str(path), "--runs", "3", "--json", "--no-reference",
                   "--db", f"sqlite:///{tmp_path / 'db.sqlite'}", env=tunesvc_env)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["agreement_ok"], (report["max_abs_error"], report["tolerance_rule"])
    assert "onnxruntime" in report["tolerance_rule"]  # derived from the reference's two paths
    assert report["max_abs_error"] <= report["tolerance"]


def test_dynamic_quantization_of_an_all_zero_input(tmp_path: Path, tunesvc_env: dict) -> None:
    """An all-zero tensor (an input, or what a Relu leaves) has an empty range to quantize:
    onnxruntime takes scale 1, TVM's DynamicQuantizeLinear a scale of 0 and a zero point
    from 0/0; the products it scales are 0 either way, and so is the answer's error."""
    path = _quantized(tmp_path, "mlp", "dynamic")
    inputs = tmp_path / "zeros.npz"
    np.savez(inputs, x=np.zeros([4, 16], np.float32))
    done = tunesvc("run", str(path), "--runs", "3", "--json", "--no-reference", "--inputs",
                   str(inputs), "--db", f"sqlite:///{tmp_path / 'db.sqlite'}", env=tunesvc_env)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["agreement_ok"], report["max_abs_error"]


def _matmul_integer_to_float() -> onnx.ModelProto:
    rng = np.random.default_rng(4)
    constants = {"B": rng.integers(0, 256, [16, 8], dtype=np.uint8),
                 "a_scale": np.array(0.02, np.float32), "b_scale": np.array(0.01, np.float32),
                 "a_zp": np.array(128, np.uint8), "b_zp": np.array(7, np.uint8),
                 "bias": rng.standard_normal(8).astype(np.float32)}
    node = helper.make_node("MatMulIntegerToFloat",
                            ["x", "B", "a_scale", "b_scale", "a_zp", "b_zp", "bias"], ["y"],
                            domain="com.microsoft")
    graph = helper.make_graph(
        [node], "mmitf", [helper.make_tensor_value_info("x", TensorProto.UINT8, [4, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 8])],
        [numpy_helper.from_array(v, k) for k, v in constants.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 8
    return model


def test_rewrites_compute_what_the_integer_operators_compute(tmp_path: Path) -> None:
    """The rewritten graphs, run by onnxruntime itself, give the original's answers: exactly
    where the arithmetic stays integer, within a quantization step for QOperator graphs."""
    rng = np.random.default_rng(3)
    cases = [(onnx.load(_quantized(tmp_path, "convnet", "dynamic")), "ConvInteger", 0.0),
             (onnx.load(_quantized(tmp_path, "convnet", "qoperator")), "QLinearConv", 0.05),
             (onnx.load(_quantized(tmp_path, "mlp", "qoperator")), "QLinearMatMul", 0.05),
             (onnx.load(_quantized(tmp_path, "lstm", "dynamic")), "DynamicQuantizeLSTM", 0.05),
             (_matmul_integer_to_float(), "MatMulIntegerToFloat", 1e-6)]
    for original, op, step in cases:
        rewritten = quantized_operators(original)
        assert op in _ops_of(original) and op not in _ops_of(rewritten)
        shape = [d.dim_value for d in original.graph.input[0].type.tensor_type.shape.dim]
        for scale in (0.0, 1.0, 5.0):  # 0: an all-zero input, an empty range to quantize
            x = (rng.standard_normal(shape) * scale).astype(np.float32)
            if op == "MatMulIntegerToFloat":
                x = rng.integers(0, 256, shape, dtype=np.uint8)
            want, got = _run(original, x), _run(rewritten, x)
            limit = step * max(1.0, float(np.abs(want).max()))
            assert float(np.abs(want - got).max()) <= limit, (op, scale)


def _ops_of(model: onnx.ModelProto) -> set[str]:
    return {node.op_type for node in model.graph.node}


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = onnxruntime.InferenceSession(model.SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]
