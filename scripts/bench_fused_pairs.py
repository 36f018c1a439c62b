#!/usr/bin/env python3
"""What running 1x1 + depthwise pairs as one kernel brings to a tuned model: the same
database, the same share, compiled twice, with the pairs as the compiler chooses them
(fused where one kernel measured faster than two) and with every pair as two kernels;
both timed in interleaved rounds (fused, two, fused, two, ...) in one process held to the
share, both checked against onnxruntime.

    scripts/bench_fused_pairs.py zoo:mobilenet_v2 --db sqlite:///mnv2.sqlite --share 50 \\
        --out docs/fused-pairs-mnv2-50.json

Prints the median of the per-round ratios with quartiles and writes them to --out. Run it
on a quiet machine: it times things.
"""

from __future__ import annotations

import json
import statistics
import sys
from datetime import datetime, timezone
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _pairs(tuned: object) -> list[dict]:
    """Each pair's form in `tuned` and its kernels' stored times (ms)."""
    by_shash = {s.lookup.workload_shash: s for s in tuned.sources}
    rows = []
    for site, form in zip(tuned.compiled.pairs, tuned.compiled.plan.pairs):
        ms_of = {name: by_shash[shash].tuned_run_sec * 1e3
                 for name, shash in (("one", site.variants["fused"]), ("depthwise", site.direct),
                                     ("pointwise", site.also))
                 if shash in by_shash and by_shash[shash].tuned_run_sec}
        rows.append({"pair": site.index, "form": form, "kernel_ms": ms_of})
    return rows


@click.command()
@click.argument("model")
@click.option("--db", required=True, help="Database URL the model was tuned into.")
@click.option("--share", type=int, required=True, help="CPU share in percent.")
@click.option("--runs", type=int, default=100, show_default=True, help="Calls per engine.")
@click.option("--rounds", type=int, default=20, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="JSON file for the results.")
def main(model: str, db: str, share: int, runs: int, rounds: int, out: Path | None) -> None:
    from tunesvc.evaluation.reference import compare, reference_outputs
    from tunesvc.models.inputs import sample_inputs
    from tunesvc.runtime.timing import RoundRatios, time_interleaved
    from tunesvc.runtime.tuned import load

    fused = load(model, share=share, db=db, hold=True)
    two = load(model, share=share, db=db, fused_pairs=False)
    inputs = sample_inputs(fused.model)
    want = reference_outputs(fused.model, inputs)
    errors = {name: compare(engine(*inputs), want).max_abs_error
              for name, engine in (("fused", fused), ("two", two))}
    times = time_interleaved({"fused": lambda: fused(*inputs), "two": lambda: two(*inputs)},
                             runs, rounds)
    ratio = RoundRatios.of(times["fused"], times["two"])
    if ratio is None:
        raise click.ClickException("no round could be timed")
    result = {"model": model, "share": share, "db": db, "runs": runs, "rounds": rounds,
              "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "plan": fused.compiled.plan.describe(), "pairs": _pairs(fused),
              "median_ms": {name: 1e3 * statistics.median(sec for one in rounds_of for sec in one)
                            for name, rounds_of in times.items()},
              "fused_over_two": {"median": ratio.median, "low": ratio.low, "high": ratio.high},
              "max_abs_error": errors}
    click.echo(f"{model} at {share}%: {result['plan']}; fused {result['median_ms']['fused']:.3f} ms, "
               f"two kernels {result['median_ms']['two']:.3f} ms; fused/two per round "
               f"{ratio.median:.3f} (quartiles {ratio.low:.3f}-{ratio.high:.3f}); max abs error "
               f"against onnxruntime {errors['fused']:.1e} / {errors['two']:.1e}")
    if out is not None:
        out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
