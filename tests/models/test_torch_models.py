"""PyTorch modules (the torch extra) tune and run, from the CLI form
`torch:package.module:factory` and from the Python API, and are checked against PyTorch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import tunesvc
from tunesvc.errors import UserError

torch = pytest.importorskip("torch", reason="torch is not installed (pip install 'tunesvc[torch]')")

from tunesvc.models.sources import load_model  # noqa: E402  (imports tests.torch_nets: needs torch)

REPO = Path(__file__).resolve().parents[2]
NET = "torch:tests.torch_nets:small_convnet"


def test_module_loads_with_the_examples_shapes_and_a_stable_fingerprint() -> None:
    first, again = load_model(NET), load_model(NET)
    assert first.input_shapes == {"image": (1, 3, 8, 8)}
    assert first.input_dtypes == {"image": "float32"}
    assert first.fingerprint == again.fingerprint  # seeded: same random weights each time
    assert load_model(NET, {"image": (2, 3, 8, 8)}).input_shapes == {"image": (2, 3, 8, 8)}


@pytest.mark.parametrize("source, message", [
    ("torch:tests.torch_nets", "is not torch:package.module:factory"),
    ("torch:tests.no_such_module:f", "cannot import tests.no_such_module"),
    ("torch:tests.torch_nets:missing", "has no callable 'missing'"),
    ("torch:tests.torch_nets:not_a_module", "must return an nn.Module"),
    ("torch:tests.torch_nets:small_convnet_without_examples", "--input-shape"),
])
def test_bad_torch_sources_fail_in_one_line(source: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        load_model(source)


@pytest.mark.slow
def test_cli_tunes_and_runs_a_torch_module(tmp_path: Path, tunesvc_env: dict[str, str]) -> None:
    url = f"sqlite:///{tmp_path / 'torch.sqlite'}"
    env = {**tunesvc_env, "PYTHONPATH": str(REPO)}
    tuned = tunesvc("tune", NET, "--shares", "100", "--trials-per-task", "4", "--no-compare",
                    "--json", "--db", url, env=env)
    assert tuned.returncode == 0, tuned.stderr
    assert sum(s["trials_measured"] for s in json.loads(tuned.stdout)["summaries"]) > 0
    ran = tunesvc("run", NET, "--share", "100", "--runs", "5", "--json", "--db", url, env=env)
    assert ran.returncode == 0, ran.stderr
    report = json.loads(ran.stdout)
    assert report["agreement_ok"] and report["reference_engine"] == "PyTorch"
    # every operator tuned at this share; a few tiny ones measured faster untuned
    rules = [op["rule"] for op in report["operators"]]
    assert "exact" in rules and set(rules) <= {"exact", "default"}
    assert report["comparison"]["pytorch"]["median_sec"] > 0
    assert report["comparison"]["onnxruntime"] is None


API = """
import sys, json, numpy as np, torch
sys.path.insert(0, sys.argv[2])
from tests.torch_nets import SmallConvNet
from tunesvc.api import tune
from tunesvc.runtime.tuned import load
from tunesvc.models.pytorch import from_module
torch.manual_seed(1)
net, x = SmallConvNet(), torch.randn(1, 3, 8, 8)
model = from_module(net, (x,), name="small")
summaries = tune(model, shares="100", trials_per_task=4, db=sys.argv[1])
tuned = load(model, share=100, db=sys.argv[1])
got = tuned(x.numpy())[0]
want = net(x).detach().numpy()
print(json.dumps({"name": model.name, "trials": sum(s.trials_measured for s in summaries),
                  "rules": [s.lookup.choice.rule for s in tuned.sources],
                  "error": float(np.abs(got - want).max())}))
"""


@pytest.mark.slow
def test_python_api_tunes_and_runs_a_module(tmp_path: Path, tunesvc_env: dict[str, str]) -> None:
    url = f"sqlite:///{tmp_path / 'api.sqlite'}"
    done = subprocess.run([sys.executable, "-c", API, url, str(REPO)], capture_output=True,
                          text=True, env=tunesvc_env, timeout=900)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["name"] == "torch:small" and result["trials"] > 0
    assert "exact" in result["rules"] and set(result["rules"]) <= {"exact", "default"}
    assert result["error"] < 1e-3
