#!/usr/bin/env bash
# Set up .venv (idempotent), then the demo: mmseg's FCN trained with SGD,
# SAM and ARSAM side by side (two at a time, one CPU thread each) on the
# generated shapes scenes with 40% of the training shapes relabelled, seed
# 0. Prints one row per method (val mIoU, passes, wall time) and writes
# work_dirs/demo/metric_and_cost.png with the other plots.
# Extra arguments go to tools/benchmark.py (e.g. --seeds 1, --device cuda).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_env.sh
START=$SECONDS
echo "[demo] SGD, SAM and ARSAM on the noisy shapes scenes, two at a time"
echo "[demo] (about 4 minutes on 2 CPU cores; the scenes are generated first)"
.venv/bin/python tools/benchmark.py \
  configs/segmentation/fcn_r18-w32_shapes-colour-noisy40_arsam.py \
  --methods sgd sam arsam --seeds 0 --jobs 2 --out work_dirs/demo "$@"
echo "Plots: work_dirs/demo/metric_and_cost.png (and sam_rate.png, arsam_schedule.png)"
echo "Logs:  work_dirs/demo/<method>_seed0/run.log"
echo "[demo] done in $((SECONDS - START)) s"
