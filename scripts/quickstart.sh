#!/usr/bin/env bash
# Install tunesvc into .venv, tune ResNet-18 at 50% of this machine's CPU cores (local
# Ray, SQLite database in the user data folder; direct and Winograd kernels, 900 trials),
# then run it at 50% with the kernels tuned for 50%, timed in interleaved rounds against
# TVM's default schedules and onnxruntime on the same cores. Extra arguments go to
# `tunesvc tune` (e.g. --shares 50,100 to tune the whole machine too; it takes longer).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e .
.venv/bin/tunesvc tune zoo:resnet18 --target cpu --shares 50 --trials 900 --no-compare "$@"
.venv/bin/tunesvc run zoo:resnet18 --target cpu --share 50
