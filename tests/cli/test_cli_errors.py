"""Bad input ends in one 'Error:' line, exit status 1, no traceback, and nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import tunesvc


@pytest.fixture()
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "schedules.sqlite"


BAD_TUNES = [
    (["tune", "/no/such/model.onnx"], "does not exist"),
    (["tune", "zoo:alexnet"], "unknown zoo model"),
    (["tune", "zoo:mlp", "--shares", "0"], "out of range"),
    (["tune", "zoo:mlp", "--shares", "150"], "out of range"),
    (["tune", "zoo:mlp", "--shares", "fifty"], "not a whole percentage"),
    (["tune", "zoo:mlp", "--target", "gpu"], "needs an NVIDIA GPU"),
    (["tune", "zoo:mlp", "--target", "nvidia/no-such-card"], "unknown target"),
    (["tune", "zoo:mlp", "--input-shape", "input:8"], "2-d input"),
    (["run", "zoo:mlp", "--share", "150"], "out of range"),
    (["run", "zoo:mlp", "--target", "gpu"], "needs an NVIDIA GPU"),
]


@pytest.mark.parametrize(("args", "message"), BAD_TUNES)
def test_bad_input_is_one_line_and_writes_nothing(args: list[str], message: str, db_path: Path,
                                                  tunesvc_env: dict) -> None:
    done = tunesvc(*args, "--db", f"sqlite:///{db_path}", env=tunesvc_env, timeout=300)
    assert done.returncode == 1
    assert done.stderr.startswith("Error: ") and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert not db_path.exists()


def test_malformed_model_file(tmp_path: Path, db_path: Path, tunesvc_env: dict) -> None:
    model = tmp_path / "model.onnx"
    model.write_text("this is not ONNX")
    done = tunesvc("tune", str(model), "--db", f"sqlite:///{db_path}", env=tunesvc_env)
    assert done.returncode == 1 and "not a valid ONNX model" in done.stderr
    assert not db_path.exists()


@pytest.mark.parametrize("url", [
    "sqlite:////no/such/folder/schedules.sqlite",
    "postgresql+psycopg://tunesvc:secret@127.0.0.1:1/tunesvc",
    "not-a-url",
])
def test_unusable_database_url(url: str, tunesvc_env: dict) -> None:
    done = tunesvc("tune", "zoo:mlp", "--db", url, env=tunesvc_env, timeout=300)
    assert done.returncode == 1 and done.stderr.startswith("Error: ")
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "secret" not in done.stderr


def test_gpus_without_a_gpu_says_so_and_succeeds(tunesvc_env: dict) -> None:
    done = tunesvc("gpus", env=tunesvc_env)
    assert done.returncode == 0
    assert "No NVIDIA GPU found" in done.stdout or "MPS" in done.stdout
