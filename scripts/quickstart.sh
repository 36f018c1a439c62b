#!/usr/bin/env bash
# Install tunesvc into .venv, tune ResNet-18 at 50% and 100% of this machine's CPU cores
# (local Ray, SQLite database in the user data folder), then run it at 50% with the
# kernels tuned for 50% (beside TVM's default schedules and onnxruntime on the same core).
# Extra arguments go to `tunesvc tune`.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e .
.venv/bin/tunesvc tune zoo:resnet18 --target cpu --shares 50,100 --trials 304 "$@"
.venv/bin/tunesvc run zoo:resnet18 --target cpu --share 50
