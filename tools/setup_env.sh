#!/usr/bin/env bash
# Create (or reuse) the project virtual environment at .venv and install
# arsam_mm with its pinned OpenMMLab stack. Idempotent: a second run only
# checks that the environment imports and returns.
# Facts behind each pin: see docs/install.md.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
PY=${PYTHON:-python3}
STAMP=$VENV/.arsam_mm_stack_v6

if [ -f "$STAMP" ] && "$VENV/bin/python" -c "import arsam, arsam_mm, mmseg, mmpose, mmpretrain, onnxruntime, albumentations, accelerate, pytest_timeout" 2>/dev/null; then
  echo "[setup] reusing $VENV"
  exit 0
fi

echo "[setup] creating $VENV (first run only: 2-5 minutes, most of it torch)"
step() { echo "[setup] $1/7 $2 ($((SECONDS - START)) s so far)"; }
START=$SECONDS
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP="$VENV/bin/python -m pip --disable-pip-version-check"
step 1 "pip, setuptools<81"
$PIP install -q --upgrade pip 'setuptools<81' wheel
# torch/torchvision: the 2.14.1/0.29.1 pair (mmpose imports torchvision).
step 2 "torch 2.14.1 and torchvision 0.29.1 (the largest part)"
$PIP install -q 'torch==2.14.1' 'torchvision==0.29.1'
# chumpy (an mmpose requirement it never imports) fails under build isolation.
step 3 "chumpy (mmpose's requirement)"
$PIP install -q --no-build-isolation 'chumpy==0.70'
step 4 "the OpenMMLab stack (requirements.txt)"
$PIP install -q -r requirements.txt
# albumentations (mmpose's Albumentation transform, RTMPose pipelines):
# 1.4.24 still takes RTMPose's CoarseDropout arguments (2.x ignores them).
# --no-deps keeps out opencv-python-headless, a second cv2 over mmcv's
# opencv-python; its other requirements are installed by name.
step 5 "albumentations 1.4.24"
$PIP install -q --no-deps 'albumentations==1.4.24' 'albucore==0.0.23'
$PIP install -q 'pydantic>=2.9.2' 'stringzilla>=3.10.4' 'simsimd>=5.9.2'
# xtcocotools' wheel is built against numpy 1.x; rebuild it for numpy 2.
step 6 "xtcocotools, rebuilt for numpy 2 (about 30 s)"
$PIP install -q --no-build-isolation --no-binary xtcocotools --force-reinstall \
  --no-deps 'xtcocotools==1.14.3'
step 7 "accelerate, pytest-timeout (tests) and arsam_mm itself"
# Test-only: a third-party trainer that drives the plain optimizer's
# two-step API (tests/test_two_step_api.py).
# pytest-timeout: a test that hangs fails with its stack (pyproject's
# timeout) instead of eating CI's 90 minutes.
$PIP install -q 'accelerate==1.16.0' 'pytest-timeout==2.4.0'
$PIP install -q --no-deps -e .
"$VENV/bin/python" -W ignore -c "import arsam_mm, mmseg, mmpose, mmpretrain, albumentations; print('[setup] ok')"
echo "[setup] done in $((SECONDS - START)) s"
touch "$STAMP"
