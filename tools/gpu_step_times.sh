#!/usr/bin/env bash
# The GPU step-time tables of README "Speed": one iteration of each method
# side by side (tools/benchmark_step.py) on random batches of the real input
# sizes, so no data set is needed:
#   ResNet-18 at CIFAR size (32x32, batch 128): fp32, --amp, W4A4 fake-quant;
#   FCN-R50-D8 at the Cityscapes crop (512x1024, batch 2): fp32, --amp,
#   W8A8 fake-quant.
# Then trains the embedded demo with --amp on the GPU (end-to-end check).
# Usage: bash tools/gpu_step_times.sh   (PYTHON=... to pick the interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
ITERS=${ITERS:-20}
CLS=configs/classification/resnet18_cifar10_arsam.py
SEG=configs/segmentation/fcn_r50-d8_cityscapes-512x1024_arsam.py
step() { "$PY" tools/benchmark_step.py "$@" --synthetic --device cuda \
  --iters "$ITERS" --warmup "${WARMUP:-3}"; echo; }
"$PY" -c "import torch; print(torch.__version__, torch.cuda.get_device_name())"
step "$CLS"
step "$CLS" --amp
step "$CLS" --quant 4 4
step "$SEG"
step "$SEG" --amp
step "$SEG" --quant 8 8
"$PY" tools/train.py configs/demo/fcn_r18_shapes_arsam.py --amp \
  --work-dir "${WORK_DIR:-work_dirs/gpu_demo_amp}"
