"""A served model as a function of NumPy arrays, with tunesvc's kernels for its share or
with onnxruntime, and the metadata the protocol reports for it.

Runs inside the model's own process, after it has been held to its share.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from typing import Callable

import numpy as np

from tunesvc.models.inputs import sample_inputs
from tunesvc.models.base import LoadedModel
from tunesvc.models.sources import load_model
from tunesvc.serving.datatypes import datatype_of
from tunesvc.serving.messages import ModelMeta, TensorInfo
from tunesvc.serving.spec import ServedModel

Predict = Callable[[tuple[np.ndarray, ...]], list[np.ndarray]]


@dataclass(frozen=True)
class Engine:
    predict: Predict
    meta: ModelMeta


def load_engine(model: ServedModel, target: str, db_url: str,
                cores: tuple[int, ...]) -> Engine:
    """`model` ready to call, warmed by one call on made-up inputs (which also gives its
    output shapes)."""
    loaded = load_model(model.source, model.input_shapes)
    if model.engine == "onnxruntime":
        predict, kernels = _onnxruntime(loaded, max(1, len(cores)))
    else:
        predict, kernels = _tvm(loaded, model, target, db_url)
    sample = tuple(sample_inputs(loaded))
    outputs = predict(sample)
    meta = ModelMeta(_inputs(loaded), _outputs(loaded, outputs), model.engine, kernels,
                     cores, os.getpid())
    return Engine(predict, meta)


def _tvm(loaded: LoadedModel, model: ServedModel, target: str,
         db_url: str) -> tuple[Predict, str]:
    from tunesvc.runtime.tuned import load

    tuned = load(loaded, target, model.share, db_url)
    rules = Counter(source.lookup.choice.describe() for source in tuned.sources)
    kernels = "; ".join(f"{count} operators {rule}" for rule, count in rules.most_common())
    return (lambda arrays: tuned(*arrays)), kernels


def _onnxruntime(loaded: LoadedModel, threads: int) -> tuple[Predict, str]:
    from tunesvc.evaluation.reference import cpu_session, feed

    if loaded.proto is None:
        raise ValueError(f"{loaded.source} is not an ONNX model: onnxruntime cannot serve it")
    session = cpu_session(loaded, threads)

    def predict(arrays: tuple[np.ndarray, ...]) -> list[np.ndarray]:
        return session.run(None, feed(loaded, list(arrays)))

    return predict, f"onnxruntime, {threads} intra-op thread(s)"


def _inputs(loaded: LoadedModel) -> tuple[TensorInfo, ...]:
    return tuple(TensorInfo(name, datatype_of(loaded.input_dtypes[name]), tuple(shape))
                 for name, shape in loaded.input_shapes.items())


def _outputs(loaded: LoadedModel, outputs: list[np.ndarray]) -> tuple[TensorInfo, ...]:
    names = [o.name for o in loaded.proto.graph.output] if loaded.proto is not None else []
    if len(names) != len(outputs):
        names = [f"output{i}" for i in range(len(outputs))]
    return tuple(TensorInfo(name, datatype_of(out.dtype), tuple(out.shape))
                 for name, out in zip(names, outputs))
