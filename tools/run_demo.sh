#!/usr/bin/env bash
# Set up .venv (idempotent) and train the embedded demo: mmseg FCN-R18 with
# ARSAM on the generated shapes set, on CPU; prints mIoU and the SAM rate.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_env.sh
.venv/bin/python tools/train.py configs/demo/fcn_r18_shapes_arsam.py "$@"
