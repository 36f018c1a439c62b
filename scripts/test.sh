#!/usr/bin/env bash
# Install tunesvc and its test dependencies into .venv, then run the whole test suite.
# Extra arguments go to pytest (e.g. `scripts/test.sh -m "not slow"`).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# torch 2.13.0 for the PyTorch tests: a CPU build where one lies on pip's find-links path
# (as on the project's machines); elsewhere PyPI's default build.
.venv/bin/python -m pip install --quiet 'torch==2.13.0'
.venv/bin/python -m pip install --quiet -e '.[test,torch]'
exec .venv/bin/python -m pytest "$@"
