"""`tunesvc report`'s files: PNG plots, a markdown summary and the data behind them (JSON).

    latency_by_share.png   tuned / TVM default / onnxruntime median per share
    tuning_curves.png      estimated latency against trials and against minutes, per share
    operator_sources.png   per share, the costliest operators and where their schedule came from
    report.md, report.json
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from tunesvc.evaluation.report_data import ModelReport, OperatorRow  # noqa: E402

RULE_COLORS = {"exact": "tab:green", "nearest": "tab:orange", "default": "tab:blue",
               "none": "tab:gray"}
TOP_OPERATORS = 15


def write_report(report: ModelReport, out: Path) -> list[Path]:
    """Write every file of the report into `out`; returns the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written = [_latency_plot(report, out / "latency_by_share.png"),
               _curve_plot(report, out / "tuning_curves.png"),
               _operator_plot(report, out / "operator_sources.png")]
    (out / "report.json").write_text(json.dumps(asdict(report), indent=2, default=str) + "\n")
    (out / "report.md").write_text(markdown(report))
    return [*written, out / "report.json", out / "report.md"]


def _in_ms(seconds: float | None) -> float:
    return float("nan") if seconds is None else seconds * 1e3


def _latency_plot(report: ModelReport, path: Path) -> Path:
    figure, axis = plt.subplots(figsize=(7, 4))
    labels = [m.share.label for m in report.latency]
    for offset, (name, values) in enumerate([
            ("tuned", [_in_ms(m.tuned_median_sec) for m in report.latency]),
            ("TVM default", [_in_ms(m.default_median_sec) for m in report.latency]),
            ("onnxruntime", [_in_ms(m.onnxruntime_median_sec) for m in report.latency])]):
        axis.bar([i + (offset - 1) * 0.27 for i in range(len(labels))], values, 0.27,
                 label=name)
    axis.set_xticks(range(len(labels)), labels)
    axis.set_ylabel("median latency (ms)")
    axis.set_title(f"{report.model}: end-to-end latency per share")
    axis.legend()
    return _save(figure, path)


def _curve_plot(report: ModelReport, path: Path) -> Path:
    figure, (by_trials, by_time) = plt.subplots(1, 2, figsize=(11, 4))
    for share, points in report.curves.items():
        by_trials.plot([p.trials for p in points], [p.estimated_ms for p in points], label=share)
        by_time.plot([p.minutes for p in points], [p.estimated_ms for p in points], label=share)
    by_trials.set_xlabel("trials measured")
    by_time.set_xlabel("minutes since the share's first record")
    for axis in (by_trials, by_time):
        axis.set_ylabel("estimated latency (ms, best kernels so far)")
        axis.set_yscale("log")
        axis.legend()
    figure.suptitle(f"{report.model}: tuning progress per share")
    return _save(figure, path)


def costliest(rows: list[OperatorRow], share: str) -> list[OperatorRow]:
    mine = [r for r in rows if r.share == share]
    return sorted(mine, key=lambda r: -(r.tuned_ms or 0) * r.uses)[:TOP_OPERATORS]


def _operator_plot(report: ModelReport, path: Path) -> Path:
    shares = report.shares or ["(none)"]
    figure, axes = plt.subplots(1, len(shares), figsize=(6 * len(shares), 5), squeeze=False)
    for axis, share in zip(axes[0], shares):
        rows = costliest(report.operators, share)
        axis.barh([r.task for r in rows], [(r.tuned_ms or 0) * r.uses for r in rows],
                  color=[RULE_COLORS[r.rule] for r in rows])
        axis.invert_yaxis()
        axis.tick_params(axis="y", labelsize=6)
        axis.set_xlabel("time per inference (ms, stored kernel x uses)")
        axis.set_title(f"{share}: green exact, orange nearest share, gray default")
    return _save(figure, path)


def _save(figure: plt.Figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def markdown(report: ModelReport) -> str:
    lines = [f"# {report.model} on {report.target}", "",
             "| share | tuned | TVM default | onnxruntime | tuned vs onnxruntime |",
             "|---|---|---|---|---|"]
    for m in report.latency:
        ratio = f"{m.speedup_vs_onnxruntime:.2f}x faster" if m.speedup_vs_onnxruntime else \
            (m.error or "n/a")
        lines.append(f"| {m.share.label} | {_in_ms(m.tuned_median_sec):.2f} ms | "
                     f"{_in_ms(m.default_median_sec):.2f} ms | "
                     f"{_in_ms(m.onnxruntime_median_sec):.2f} ms | {ratio} |")
    for share, points in report.curves.items():
        if points:
            lines.append(f"\n{share}: {points[-1].trials} trials; estimated latency "
                         f"{points[0].estimated_ms:.2f} -> {points[-1].estimated_ms:.2f} ms.")
    lines += ["", "![latency](latency_by_share.png)", "![curves](tuning_curves.png)",
              "![operators](operator_sources.png)", ""]
    return "\n".join(lines)
