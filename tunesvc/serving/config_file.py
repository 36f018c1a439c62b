"""The serve config file that `tunesvc plan` writes and `tunesvc serve --config` reads.

    target: cpu
    models:
      - name: resnet18
        model: zoo:resnet18
        share: 50
        input_shapes: {input: [1, 3, 224, 224]}   # optional
        replicas: 1                               # optional
        objective: {p99_ms: 30, rate: 20}         # optional: p99 at that request rate
        engine: tvm                               # optional: or onnxruntime

YAML (.yaml, .yml) or TOML (.toml, a [[models]] table per model).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from tunesvc.errors import UserError
from tunesvc.serving.spec import (Objective, ServedModel, checked, default_name, parse_argument,
                                  unique, with_shapes)

_KEYS = {"name", "model", "share", "input_shapes", "replicas", "objective", "engine"}


@dataclass(frozen=True)
class ServeFile:
    target: str
    models: list[ServedModel]


def read_config(path: Path) -> ServeFile:
    """The config at `path`; UserError naming the file and the entry for anything wrong."""
    data = _parse(path)
    if not isinstance(data, dict) or not isinstance(data.get("models"), list):
        raise UserError(f"{path}: expected a mapping with a 'models' list")
    models = [_model(path, i, entry) for i, entry in enumerate(data["models"])]
    return ServeFile(str(data.get("target", "cpu")), unique(models))


def write_config(path: Path, config: ServeFile) -> None:
    """Write `config` as YAML, whole or not at all."""
    text = yaml.safe_dump({"target": config.target,
                           "models": [m.to_dict() for m in config.models]}, sort_keys=False)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    partial.replace(path)


def _parse(path: Path) -> Any:
    try:
        text = path.read_text()
    except OSError as exc:
        raise UserError(f"cannot read config {path}: {exc.strerror}") from None
    try:
        if path.suffix == ".toml":
            import tomllib  # Python 3.11+

            return tomllib.loads(text)
        return yaml.safe_load(text)
    except ImportError:
        raise UserError(f"{path}: TOML needs Python 3.11 or later; write it as YAML") from None
    except Exception as exc:  # yaml.YAMLError, tomllib.TOMLDecodeError
        raise UserError(f"{path} is not valid {path.suffix.lstrip('.') or 'YAML'}: "
                        f"{str(exc).splitlines()[0]}") from None


def _model(path: Path, index: int, entry: Any) -> ServedModel:
    where = f"{path}: models[{index}]"
    if not isinstance(entry, dict) or "model" not in entry or "share" not in entry:
        raise UserError(f"{where} needs at least 'model' and 'share'")
    unknown = set(entry) - _KEYS
    if unknown:
        raise UserError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; "
                        f"known: {', '.join(sorted(_KEYS))}")
    try:
        return checked(ServedModel(
            name=str(entry.get("name") or default_name(str(entry["model"]))),
            source=str(entry["model"]), share=int(entry["share"]),
            input_shapes={str(k): tuple(int(d) for d in v)
                          for k, v in (entry.get("input_shapes") or {}).items()},
            replicas=int(entry.get("replicas", 1)), objective=_objective(entry.get("objective")),
            engine=str(entry.get("engine", "tvm"))))
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise UserError(f"{where}: {exc}") from None


def _objective(value: Any) -> Objective | None:
    if value is None:
        return None
    return Objective(float(value["p99_ms"]), float(value["rate"]))


def served_models(arguments: tuple[str, ...], config: Path | None, target: str,
                  input_shapes: tuple[str, ...],
                  engine: str | None) -> tuple[list[ServedModel], str]:
    """The models to serve and the target, from MODEL@SHARE arguments or a config file
    (not both), with --input-shape and --engine applied."""
    if config is not None and arguments:
        raise UserError("give MODEL@SHARE arguments or --config, not both")
    if config is not None:
        loaded = read_config(config)
        models, target = loaded.models, loaded.target
    else:
        models = [parse_argument(text) for text in arguments]
    models = with_shapes(unique(models), input_shapes)
    if engine is not None:
        models = [replace(m, engine=engine) for m in models]
    return models, target
