"""Real exported models run with `tunesvc run` (TVM's default schedules) and match
onnxruntime, or fail in one line naming what TVM lacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import tunesvc
from tests.real_models import MODELS, UNSUPPORTED, RealModel, fetch

pytestmark = [pytest.mark.cpu, pytest.mark.slow]  # real models: minutes in all


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.id)
def test_real_model_runs_and_matches_onnxruntime(model: RealModel, tmp_path: Path,
                                                 tunesvc_env: dict[str, str]) -> None:
    shapes = [arg for shape in model.shapes for arg in ("--input-shape", shape)]
    shapes += [arg for value in model.values for arg in ("--input-value", value)]
    done = tunesvc("run", str(fetch(model)), *shapes, "--runs", "3", "--json", "--no-reference",
                   "--db", f"sqlite:///{tmp_path / 'db.sqlite'}", env=tunesvc_env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["agreement_ok"], (report["max_abs_error"], report["tolerance"])


def test_real_model_tvm_cannot_import_fails_in_one_line(tmp_path: Path,
                                                        tunesvc_env: dict[str, str]) -> None:
    path = fetch(UNSUPPORTED)
    shapes = [arg for shape in UNSUPPORTED.shapes for arg in ("--input-shape", shape)]
    done = tunesvc("run", str(path), *shapes, "--db", f"sqlite:///{tmp_path / 'db.sqlite'}",
                   env=tunesvc_env)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"Error: TVM cannot import {path}: no converter for If ")
