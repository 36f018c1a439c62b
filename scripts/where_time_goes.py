#!/usr/bin/env python3
"""Where the time goes, side by side: the costliest operators of the tuned model (time per
inference inside the compiled model, TVM's VM instrumentation) next to onnxruntime's own
per-node profile (`SessionOptions.enable_profiling`) of the same model on the same cores.

    scripts/where_time_goes.py zoo:resnet18 --db sqlite:///r18.sqlite --share 50 --top 10 \\
        --out docs/where-time-goes-resnet18-50.json

Prints two Markdown tables (and writes both lists to --out). The process is held to the
share first, as `tunesvc run` holds it. Run it on a quiet machine: it times things.
"""

from __future__ import annotations

import json
import tempfile
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import click

RUNS = 20


@dataclass(frozen=True)
class Row:
    name: str
    kind: str  # TVM: the algorithm; onnxruntime: the node's operator type
    calls: int  # per inference
    ms: float  # per inference, all calls
    share_of_total: float
    shape: str = ""


def tvm_rows(model: str, db: str, share: int) -> list[Row]:
    """Per fused function, its time per inference inside the compiled model."""
    from diagnose_kernels import vm_call_times
    from tunesvc.models.inputs import sample_inputs
    from tunesvc.runtime.tuned import load

    tuned = load(model, share=share, db=db, hold=True)
    spent, calls = vm_call_times(str(tuned.library_path), sample_inputs(tuned.model), RUNS)
    total = sum(spent.values())
    return [Row(name, _algorithm(name), calls[name] // RUNS, seconds / RUNS * 1e3,
                seconds / total) for name, seconds in spent.items()
            if name != "vm.builtin.check_tensor_info"]


def _algorithm(symbol: str) -> str:
    """A compiled function's convolution algorithm, from its name."""
    for name in ("winograd2", "winograd4"):
        if name in symbol:
            return name
    return "direct conv" if "conv2d" in symbol else ""


def onnxruntime_rows(model: str, share: int) -> list[Row]:
    """Per node of onnxruntime's optimized graph, its kernel time per inference."""
    import onnxruntime

    from tunesvc.models.inputs import sample_inputs
    from tunesvc.models.sources import load_model
    from workers.shares import Share

    held = Share("cpu", share)
    held.backend.hold(held)
    loaded = load_model(model)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = held.backend.host_threads(held) or 1
    options.inter_op_num_threads = 1
    options.enable_profiling = True
    options.profile_file_prefix = str(Path(tempfile.mkdtemp()) / "ort")
    session = onnxruntime.InferenceSession(loaded.proto.SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])
    feed = dict(zip(loaded.input_shapes, sample_inputs(loaded)))
    for _ in range(RUNS + 1):
        session.run(None, feed)
    events = json.loads(Path(session.end_profiling()).read_text())
    return _node_rows(events)


def _node_rows(events: list[dict]) -> list[Row]:
    spent: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    kinds: dict[str, str] = {}
    shapes: dict[str, str] = {}
    for event in events:
        name = event.get("name", "")
        if event.get("cat") != "Node" or not name.endswith("_kernel_time"):
            continue
        node = name.removesuffix("_kernel_time")
        spent[node] += event["dur"] / 1e3  # microseconds -> ms
        calls[node] += 1
        kinds[node] = event.get("args", {}).get("op_name", "")
        shapes[node] = _shape(event.get("args", {}).get("output_type_shape", []))
    runs = max(calls.values(), default=1)  # every node runs once per inference
    total = sum(spent.values())
    return [Row(node, kinds[node], 1, ms / runs, ms / total, shapes[node])
            for node, ms in spent.items()]


def _shape(outputs: list[dict]) -> str:
    """[{'float': [1, 8, 56, 56, 8]}] -> '1x8x56x56x8'."""
    return ", ".join("x".join(map(str, dims)) for out in outputs for dims in out.values())


def markdown(title: str, rows: list[Row], top: int) -> str:
    lines = [f"**{title}** (top {top}; all: {sum(r.ms for r in rows):.2f} ms per inference)", "",
             "| operator | kind | output | calls | ms per inference | share |",
             "|---|---|---|---|---|---|"]
    for row in sorted(rows, key=lambda r: -r.ms)[:top]:
        lines.append(f"| {row.name} | {row.kind} | {row.shape} | {row.calls} | {row.ms:.3f} | "
                     f"{100 * row.share_of_total:.1f}% |")
    return "\n".join(lines)


@click.command()
@click.argument("model")
@click.option("--db", required=True, help="Database the model was tuned into.")
@click.option("--share", default=100, show_default=True, type=int)
@click.option("--top", default=10, show_default=True, type=int)
@click.option("--out", type=click.Path(path_type=Path), help="Write both lists as JSON.")
def main(model: str, db: str, share: int, top: int, out: Path | None) -> None:
    tvm_side = tvm_rows(model, db, share)
    ort_side = onnxruntime_rows(model, share)
    click.echo(markdown(f"tunesvc, {model} at {share}%", tvm_side, top))
    click.echo()
    click.echo(markdown(f"onnxruntime, {model} at {share}%", ort_side, top))
    if out is not None:
        out.write_text(json.dumps({"model": model, "share": share,
                                   "tunesvc": [asdict(r) for r in tvm_side],
                                   "onnxruntime": [asdict(r) for r in ort_side]}, indent=1))


if __name__ == "__main__":
    main()
