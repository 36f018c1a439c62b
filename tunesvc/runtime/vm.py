"""A compiled model library loaded into TVM's Relax VM: call it with NumPy arrays."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import tvm
from tvm import relax

from tunesvc.errors import model_step
from tunesvc.runtime.timing import LatencyStats, time_calls


class VmModel:
    """A library compiled for `device_type` ('cpu', 'cuda'); `input_count` arrays per call,
    in input order."""

    def __init__(self, library_path: Path, device_type: str, input_count: int) -> None:
        self.library_path = library_path
        self.device = tvm.device(device_type, 0)
        self.input_count = input_count
        with model_step("loading the compiled library", str(library_path)):
            self._vm = relax.VirtualMachine(tvm.runtime.load_module(str(library_path)),
                                            self.device)

    def _inputs(self, arrays: tuple[np.ndarray, ...]) -> list[tvm.runtime.Tensor]:
        if len(arrays) != self.input_count:
            raise ValueError(f"expected {self.input_count} inputs, got {len(arrays)}")
        return [tvm.runtime.tensor(np.asarray(a, order="C"), self.device) for a in arrays]

    def __call__(self, *arrays: np.ndarray) -> list[np.ndarray]:
        out = self._vm["main"](*self._inputs(arrays))
        outputs = [out] if isinstance(out, tvm.runtime.Tensor) else list(out)
        return [o.numpy() for o in outputs]

    def timed_call(self, *arrays: np.ndarray) -> Callable[[], None]:
        """One inference, inputs already on the device: what a benchmark times."""
        tensors, main = self._inputs(arrays), self._vm["main"]

        def call() -> None:
            main(*tensors)
            self.device.sync()

        return call

    def benchmark(self, *arrays: np.ndarray, runs: int = 30) -> LatencyStats:
        """Latency of `runs` calls, inputs already on the device (see `tunesvc.runtime.timing`)."""
        return time_calls(self.timed_call(*arrays), runs)
