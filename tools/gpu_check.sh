#!/usr/bin/env bash
# One call on a GPU machine: the mmengine path timed and trained on CUDA.
#
#   bash tools/gpu_wheels.sh            # here: fills .whl/ (PyPI needed)
#   bash tools/gpu_check.sh             # there (the device tool: carry .whl)
#
# 1. Installs the OpenMMLab wheels carried in .whl/ into /tmp/site unless
#    the stack imports already (a venv made by tools/setup_env.sh);
#    xtcocotools is built from its source there (no Python 3.12 wheel),
#    and without it the pose rows are skipped.
# 2. tools/benchmark_step.py --synthetic (no data set) through the
#    wrappers: SGD, SAM, ARSAM (reuse and SAM iterations, and the budget's
#    average), LookSAM, on mmseg's FCN-R50-D8 at the Cityscapes crop
#    (512x1024, batch 2) and mmpose's SimpleBaseline-R50 at 256x192 (batch
#    64): fp32, --amp float16, --amp bfloat16; ms/iter, x SAM, peak memory.
# 3. Trains the demo config 100 iterations through tools/train.py --amp.
# Output: $OUT/gpu_check.txt (the device tool brings $OUT back), else
# work_dirs/gpu_check/gpu_check.txt. Sizes and lengths are variables, so
# tests/test_gpu_check.py runs it on a CPU with tiny ones.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && PY=.venv/bin/python
DEVICE=${DEVICE:-cuda}
ITERS=${ITERS:-20}
WARMUP=${WARMUP:-3}
SEG_SHAPE=${SEG_SHAPE:-512 1024}
SEG_BATCH=${SEG_BATCH:-2}
POSE_SHAPE=${POSE_SHAPE:-256 192}
POSE_BATCH=${POSE_BATCH:-64}
TRAIN_ITERS=${TRAIN_ITERS:-100}
DTYPES=${DTYPES:-fp32 float16 bfloat16}
OUTDIR=${OUT:-work_dirs/gpu_check}
mkdir -p "$OUTDIR"
LOG="$OUTDIR/gpu_check.txt"
: > "$LOG"
say() { echo "$@" | tee -a "$LOG"; }

if ! "$PY" -c "import mmseg, mmengine" 2>/dev/null; then
  say "[gpu_check] installing the carried wheels (.whl/) into /tmp/site"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site \
    .whl/*.whl || { say "[gpu_check] no usable wheels in .whl/: run tools/gpu_wheels.sh here first"; exit 1; }
  export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}
  "$PY" -m pip install -q --no-index --no-deps --no-build-isolation \
    --target /tmp/site .whl/xtcocotools-*.tar.gz >/dev/null 2>&1 \
    || say "[gpu_check] xtcocotools did not build: pose rows will be skipped"
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
"$PY" -W ignore -c "import torch, mmengine; print('torch', torch.__version__, 'mmengine', mmengine.__version__, 'device', torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu')" 2>&1 | tee -a "$LOG"

step() {  # config, shape, batch, dtype
  local amp=()
  [ "$4" != fp32 ] && amp=(--amp --amp-dtype "$4")
  "$PY" -W ignore tools/benchmark_step.py "$1" --synthetic --device "$DEVICE" \
    --shape $2 --batch-size "$3" --iters "$ITERS" --warmup "$WARMUP" \
    "${amp[@]}" 2>"$OUTDIR/last_error.txt" | grep -v ' - mmengine - ' | tee -a "$LOG"
  local rc=${PIPESTATUS[0]}
  [ "$rc" -eq 0 ] || { say "[gpu_check] $1 $4 failed:"; tail -5 "$OUTDIR/last_error.txt" | tee -a "$LOG"; }
  say ""
}
for dtype in $DTYPES; do
  step configs/segmentation/fcn_r50-d8_cityscapes-512x1024_arsam.py "$SEG_SHAPE" "$SEG_BATCH" "$dtype"
done
if "$PY" -c "import xtcocotools" 2>/dev/null; then
  for dtype in $DTYPES; do
    step configs/pose/td-hm_res50_coco-256x192_arsam.py "$POSE_SHAPE" "$POSE_BATCH" "$dtype"
  done
else
  say "[gpu_check] no xtcocotools: the pose rows were not run"
fi
say "[gpu_check] tools/train.py --amp, $TRAIN_ITERS iterations of the demo config"
"$PY" -W ignore tools/train.py configs/demo/fcn_r18_shapes_arsam.py --amp \
  --work-dir "$OUTDIR/train_amp" --cfg-options "train_cfg.max_iters=$TRAIN_ITERS" \
  "train_cfg.val_interval=$TRAIN_ITERS" val_dataloader.dataset.indices=16 \
  > "$OUTDIR/train_amp.log" 2>&1
rc=$?
grep -E "arsam_mm summary|Error: |error: " "$OUTDIR/train_amp.log" | tee -a "$LOG"
say "[gpu_check] done (train exit $rc); the tables: $LOG"
exit $rc
