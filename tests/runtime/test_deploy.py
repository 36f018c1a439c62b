"""`tunesvc compile` writes a library and its manifest; a fresh process with no schedule
database loads it with `load_library` and matches onnxruntime."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import TunedDatabase, tunesvc
from tunesvc.errors import UserError
from tunesvc.models.inputs import sample_inputs
from tunesvc.models.sources import load_model
from tunesvc.evaluation.reference import reference_outputs
from tunesvc.runtime import load_library

pytestmark = pytest.mark.slow

SERVE = """
import json, sys, numpy as np
from tunesvc.runtime import load_library
from workers.shares.threads import thread_affinities
model = load_library(sys.argv[1], hold=True)
data = np.load(sys.argv[2])
outputs = model(*[data[spec.name] for spec in model.manifest.inputs])
np.save(sys.argv[3], outputs[0])
print(json.dumps(sorted(set(thread_affinities().values()))))
"""


def test_compiled_library_serves_without_the_database(tuned_mlp: TunedDatabase, tmp_path: Path,
                                                      tunesvc_env: dict[str, str]) -> None:
    library = tmp_path / "mlp.so"
    done = tunesvc("compile", "zoo:mlp", "--share", "50", "-o", str(library),
                   "--db", tuned_mlp.url, env=tunesvc_env)
    assert done.returncode == 0, done.stderr
    assert "2 of 2 operators tuned" in done.stdout
    manifest = json.loads((tmp_path / "mlp.so.json").read_text())
    assert (manifest["share"], manifest["model"]) == ("cpu:50%", "zoo:mlp")
    assert all(o["rule"] == "exact" and o["record_id"] for o in manifest["operators"])
    assert manifest["inputs"] == [{"name": "input", "shape": [8, 64], "dtype": "float32"}]

    model = load_model("zoo:mlp")
    inputs = sample_inputs(model)
    np.savez(tmp_path / "in.npz", input=inputs[0])
    no_db = {**tunesvc_env, "TUNESVC_HOME": str(tmp_path / "empty-home"),
             "TUNESVC_DB": "postgresql://nobody@127.0.0.1:9/none"}  # would fail if used
    served = subprocess.run([sys.executable, "-c", SERVE, str(library), str(tmp_path / "in.npz"),
                             str(tmp_path / "out.npy")], env=no_db, check=True, timeout=300,
                            capture_output=True, text=True)
    # held to the library's share: every thread on the first of the process's cores
    first_core = sorted(os.sched_getaffinity(0))[0]
    assert json.loads(served.stdout.strip().splitlines()[-1]) == [[first_core]]
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"),
                               reference_outputs(model, inputs)[0], rtol=1e-4, atol=1e-4)
    assert not (tmp_path / "empty-home").exists()


def test_load_library_needs_its_manifest(tmp_path: Path) -> None:
    (tmp_path / "lone.so").write_bytes(b"")
    with pytest.raises(UserError, match="lone.so.json does not exist"):
        load_library(tmp_path / "lone.so")


def test_compile_into_a_missing_folder_fails_in_one_line(tuned_mlp: TunedDatabase, tmp_path: Path,
                                                         tunesvc_env: dict[str, str]) -> None:
    out = tmp_path / "nowhere" / "mlp.so"
    done = tunesvc("compile", "zoo:mlp", "--share", "50", "-o", str(out), "--db", tuned_mlp.url,
                   env=tunesvc_env)
    assert done.returncode == 1
    assert done.stderr.strip() == f"Error: -o {out}: folder {out.parent} does not exist"
