"""PyTorch models (the `torch` extra): an `nn.Module` with example inputs, captured with
`torch.export` at the examples' shapes and imported by TVM's Relax frontend.

Two ways in: `from_module(module, example_inputs)` from Python, and the model name
`torch:package.module:factory` anywhere a model is named (`package.module` importable
from the current folder or the Python path; `factory()` returns the module, or the module
and a tuple of example inputs). Factories run after `torch.manual_seed(0)`, so a module
with random weights is the same module in every process. The reference a PyTorch model is
checked and timed against is PyTorch itself (eager, no gradients).

torch is imported only here and only when a PyTorch model is loaded.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tunesvc.errors import UserError, first_line
from tunesvc.models.base import TORCH_PREFIX, LoadedModel, Shape


log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TorchGraph:
    """A module as TVM imports it (`exported`) and as PyTorch runs it (`module`): its own
    reference engine (PyTorch eager) too."""

    module: Any  # torch.nn.Module, in eval mode
    exported: Any = field(repr=False)  # torch.export.ExportedProgram
    fingerprint: str
    name: str = "PyTorch"  # as a reference engine

    def to_relax(self) -> Any:
        from tvm.relax.frontend.torch import from_exported_program

        return from_exported_program(self.exported, unwrap_unit_return_tuple=True)

    def outputs(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """PyTorch's own outputs, flattened in order."""
        import torch

        with torch.no_grad():
            result = self.module(*[torch.from_numpy(np.ascontiguousarray(a)) for a in inputs])
        return [t.detach().numpy() for t in _flatten(result)]

    def timed_call(self, inputs: list[np.ndarray], threads: int) -> Callable[[], object]:
        """One PyTorch eager inference with `threads` intra-op threads (the process's
        affinity decides which cores): what a benchmark times."""
        import torch

        torch.set_num_threads(threads)
        tensors = [torch.from_numpy(np.ascontiguousarray(a)) for a in inputs]

        def call() -> object:
            with torch.no_grad():
                return self.module(*tensors)

        return call

    def second_opinion(self, inputs: list[np.ndarray]) -> list[np.ndarray] | None:
        return None  # eager PyTorch is the one implementation compared with


def from_module(module: Any, example_inputs: tuple[Any, ...], name: str | None = None,
                source: str | None = None) -> LoadedModel:
    """A PyTorch module as a model tunesvc tunes and runs, at the examples' shapes.
    `name` is how the database lists it (default: the module's class path)."""
    torch = _torch()
    examples = tuple(_as_tensor(torch, x) for x in example_inputs)
    module = module.eval()
    try:
        with torch.no_grad():
            exported = torch.export.export(module, examples)
    except Exception as exc:  # torch.export raises many types for graphs it cannot capture
        log.exception("torch.export failed")
        raise UserError(f"torch.export cannot capture {name or type(module).__name__}: "
                        f"{first_line(exc)}") from None
    names = list(exported.graph_signature.user_inputs)
    shapes = {n: tuple(int(d) for d in x.shape) for n, x in zip(names, examples)}
    dtypes = {n: str(x.numpy().dtype) for n, x in zip(names, examples)}
    label = source or TORCH_PREFIX + (name or _class_path(module))
    graph = TorchGraph(module, exported, _fingerprint(module, exported, shapes))
    return LoadedModel(label, None, shapes, dtypes, graph)


def load_torch_source(source: str, shapes: dict[str, Shape]) -> LoadedModel:
    """`torch:package.module:factory`, the examples' shapes replaced by `shapes`."""
    module, examples = _call_factory(source)
    if shapes or not examples:
        examples = _reshaped(module, examples, shapes, source)
    return from_module(module, examples, source=source)


def _call_factory(source: str) -> tuple[Any, tuple[Any, ...]]:
    path, _, factory_name = source[len(TORCH_PREFIX):].partition(":")
    if not path or not factory_name:
        raise UserError(f"{source!r} is not torch:package.module:factory")
    torch = _torch()  # first: a missing torch is named as such, not as the module failing
    factory = getattr(_import(path, source), factory_name, None)
    if not callable(factory):
        raise UserError(f"{source}: module {path} has no callable {factory_name!r}")
    torch.manual_seed(0)
    try:
        made = factory()
    except Exception as exc:  # a user's factory may fail in any way
        log.exception("%s() failed", factory_name)
        raise UserError(f"{source}: {factory_name}() failed: {first_line(exc)}") from None
    if isinstance(made, tuple) and len(made) == 2 and isinstance(made[0], torch.nn.Module):
        return made[0], tuple(made[1])
    if isinstance(made, torch.nn.Module):
        return made, ()
    raise UserError(f"{source}: {factory_name}() must return an nn.Module, or "
                    f"(module, example_inputs); got {type(made).__name__}")


def _import(path: str, source: str) -> Any:
    if "" not in sys.path:
        sys.path.insert(0, "")  # the current folder, as `python -m` would have it
    try:
        return importlib.import_module(path)
    except Exception as exc:  # a user's module may fail to import in any way
        log.exception("importing %s failed", path)
        raise UserError(f"{source}: cannot import {path}: {first_line(exc)}") from None


def _reshaped(module: Any, examples: tuple[Any, ...], shapes: dict[str, Shape],
              source: str) -> tuple[Any, ...]:
    """Examples at the `--input-shape` sizes, matched by forward()'s parameter names;
    without examples from the factory, every input needs a shape (float32)."""
    torch = _torch()
    names = list(inspect.signature(module.forward).parameters)
    unknown = set(shapes) - set(names)
    if unknown:
        raise UserError(f"{source} has no input named {sorted(unknown)}; its inputs: "
                        f"{', '.join(names)}")
    if not examples:
        missing = [n for n in names if n not in shapes]
        if missing:
            raise UserError(f"{source}: the factory gives no example inputs; give the shape "
                            f"of {', '.join(missing)} with --input-shape NAME:DxD...")
        return tuple(torch.randn(shapes[n]) for n in names)
    return tuple(_example(torch, shapes[n], x.dtype) if n in shapes else x
                 for n, x in zip(names, examples))


def _example(torch: Any, shape: Shape, dtype: Any) -> Any:
    if dtype.is_floating_point:
        return torch.randn(shape, dtype=dtype)
    return torch.zeros(shape, dtype=dtype)


def _as_tensor(torch: Any, value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach()
    return torch.from_numpy(np.ascontiguousarray(value))


def _fingerprint(module: Any, exported: Any, shapes: dict[str, Shape]) -> str:
    digest = hashlib.sha256(str(exported.graph).encode())
    for key, tensor in module.state_dict().items():
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    digest.update(repr(sorted(shapes.items())).encode())
    return digest.hexdigest()[:24]


def _flatten(result: Any) -> list[Any]:
    if isinstance(result, (tuple, list)):
        return [t for item in result for t in _flatten(item)]
    return [result]


def _class_path(module: Any) -> str:
    return f"{type(module).__module__}.{type(module).__qualname__}"


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise UserError("PyTorch models need the torch extra: pip install 'tunesvc[torch]' "
                        "(a CPU build: pip install torch --index-url "
                        "https://download.pytorch.org/whl/cpu)") from None
    return torch

