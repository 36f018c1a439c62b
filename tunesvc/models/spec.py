"""A model as a user names it, in one value: the source, the shapes that fix its dynamic
inputs, the scalar inputs fixed to a value, and the arrays it is measured on. It loads the
model here, and gives the arguments another process needs to load the same model
(`tunesvc run` for each share after tuning, a tuning run submitted to a cluster)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tunesvc.models.base import LoadedModel, Shape


@dataclass(frozen=True)
class ModelSpec:
    source: str  # an ONNX file, zoo:NAME or torch:package.module:factory
    input_shapes: dict[str, Shape] = field(default_factory=dict)  # --input-shape
    input_values: dict[str, str] = field(default_factory=dict)  # --input-value
    inputs_file: Path | None = None  # --inputs: arrays to measure on (else made up)

    @classmethod
    def of_cli(cls, source: str, shapes: tuple[str, ...] = (), values: tuple[str, ...] = (),
               inputs_file: Path | None = None) -> ModelSpec:
        """From the CLI's `--input-shape NAME:DxD`, `--input-value NAME=V`, `--inputs`."""
        from tunesvc.models.sources import parse_input_shape, parse_input_value

        return cls(source, dict(parse_input_shape(s) for s in shapes),
                   dict(parse_input_value(v) for v in values), inputs_file)

    def load(self) -> LoadedModel:
        from tunesvc.models.sources import load_model

        return load_model(self.source, self.input_shapes, self.input_values)

    def inputs(self, model: LoadedModel) -> list[np.ndarray]:
        """The arrays `model` (this spec, loaded) runs on: read from the file, else made up."""
        from tunesvc.models.inputs import model_inputs

        return model_inputs(model, self.inputs_file)

    def argv(self) -> list[str]:
        """The source and the options that make another tunesvc process load the same."""
        args = [self.source]
        for name, dims in self.input_shapes.items():
            args += ["--input-shape", f"{name}:{'x'.join(map(str, dims))}"]
        for name, value in self.input_values.items():
            args += ["--input-value", f"{name}={value}"]
        if self.inputs_file is not None:
            args += ["--inputs", str(self.inputs_file.resolve())]
        return args
