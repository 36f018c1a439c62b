"""What is served: each model, the share it runs at, its replicas and its latency objective,
from `MODEL@SHARE` arguments or a config file (YAML, or TOML where Python reads it).

This module only parses and writes; it loads no model and starts nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any


from tunesvc.errors import UserError
from tunesvc.models.base import Shape
from tunesvc.models.sources import parse_input_shape

ENGINES = ("tvm", "onnxruntime")  # tunesvc's kernels, or onnxruntime for comparison
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Objective:
    """A latency objective: p99 at most `p99_ms` while `rate` requests/s arrive."""

    p99_ms: float
    rate: float


@dataclass(frozen=True)
class ServedModel:
    """One model as served: its URL name, where it is loaded from, and its share."""

    name: str
    source: str
    share: int
    input_shapes: dict[str, Shape] = field(default_factory=dict)
    replicas: int = 1
    objective: Objective | None = None
    engine: str = "tvm"

    def to_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": self.name, "model": self.source, "share": self.share}
        if self.input_shapes:
            entry["input_shapes"] = {k: list(v) for k, v in self.input_shapes.items()}
        if self.replicas != 1:
            entry["replicas"] = self.replicas
        if self.objective is not None:
            entry["objective"] = {"p99_ms": self.objective.p99_ms, "rate": self.objective.rate}
        if self.engine != "tvm":
            entry["engine"] = self.engine
        return entry


def default_name(source: str) -> str:
    """resnet18 for zoo:resnet18, det for /models/det.onnx, Net for torch:pkg.mod:Net."""
    tail = source.rsplit(":", 1)[-1] if not source.endswith(".onnx") else Path(source).stem
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", tail)
    return name or "model"


def parse_argument(text: str) -> ServedModel:
    """'zoo:resnet18@50' or 'name=model.onnx@50'."""
    source, at, share = text.rpartition("@")
    if not at or not source or not share.strip().isdigit():
        raise UserError(f"{text!r} is not MODEL@SHARE (e.g. zoo:resnet18@50, "
                        "det=models/det.onnx@50)")
    name, source = named(source)
    return checked(ServedModel(name, source, int(share)))


def named(text: str) -> tuple[str, str]:
    """'det=models/det.onnx' -> ('det', 'models/det.onnx'); 'zoo:resnet18' -> ('resnet18', ...)."""
    name, equals, rest = text.partition("=")
    if equals and _NAME_RE.match(name):
        return name, rest
    return default_name(text), text


def with_shapes(models: list[ServedModel], texts: tuple[str, ...]) -> list[ServedModel]:
    """Apply --input-shape values: 'NAME:DxD' when one model is served, else
    'MODEL/NAME:DxD' for the model named MODEL."""
    by_name = {m.name: dict(m.input_shapes) for m in models}
    for text in texts:
        target, slash, rest = text.partition("/")
        if not slash:
            if len(models) != 1:
                raise UserError(f"--input-shape {text!r}: with several models say which, as "
                                f"MODEL/NAME:DxD (models: {', '.join(by_name)})")
            target, rest = models[0].name, text
        if target not in by_name:
            raise UserError(f"--input-shape {text!r}: no model named {target!r} "
                            f"(models: {', '.join(by_name)})")
        input_name, shape = parse_input_shape(rest)
        by_name[target][input_name] = shape
    return [replace(m, input_shapes=by_name[m.name]) for m in models]


def checked(model: ServedModel) -> ServedModel:
    if not _NAME_RE.match(model.name):
        raise UserError(f"model name {model.name!r}: use letters, digits, '_', '.', '-'")
    if not 1 <= model.share <= 100:
        raise UserError(f"{model.name}: share {model.share}% is not between 1 and 100")
    if model.replicas < 1:
        raise UserError(f"{model.name}: replicas must be at least 1, not {model.replicas}")
    if model.engine not in ENGINES:
        raise UserError(f"{model.name}: engine {model.engine!r} is not one of {', '.join(ENGINES)}")
    return model


def unique(models: list[ServedModel]) -> list[ServedModel]:
    """The models, refusing two under one name (their URLs would clash)."""
    seen: set[str] = set()
    for model in models:
        if model.name in seen:
            raise UserError(f"two models are named {model.name!r}: name them, e.g. "
                            f"a={model.source}@{model.share}")
        seen.add(model.name)
    if not models:
        raise UserError("no model to serve: give MODEL@SHARE arguments or --config FILE")
    return models
