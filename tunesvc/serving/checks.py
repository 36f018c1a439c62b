"""Checks made before any replica starts, so that a user's mistake (a missing file, a
wrong input name, a share this machine cannot give) ends in one line at once rather than
in a process that fails to load and is retried."""

from __future__ import annotations

from tunesvc.errors import UserError
from tunesvc.models.sources import load_model
from tunesvc.serving.spec import ServedModel
from workers.shares import BACKENDS, Share


def check_models(models: list[ServedModel], share_kind: str) -> None:
    backend = BACKENDS[share_kind]
    for model in models:
        backend.validate(Share(share_kind, model.share))
        loaded = load_model(model.source, model.input_shapes)
        if model.engine == "onnxruntime" and loaded.proto is None:
            raise UserError(f"{model.name}: onnxruntime serves ONNX models only, not "
                            f"{model.source}")
