#!/usr/bin/env bash
# Fill .whl/ with what tools/gpu_check.sh installs on a lent GPU machine
# (Python 3.12 with torch, no OpenMMLab, no internet): the OpenMMLab
# wheels (pure Python), their small requirements, and xtcocotools' source
# (no Python 3.12 wheel exists; the check builds it there, or times the
# segmentation model only). About 12 MiB. Run it here, where PyPI is
# reachable; .whl/ is ignored by git and carried by the device call.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
PIP="${PYTHON:-.venv/bin/python} -m pip --disable-pip-version-check"
mkdir -p .whl
$PIP download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
  mmengine==0.10.7 mmcv-lite==2.1.0 mmsegmentation==1.2.2 mmpose==1.3.2 \
  mmdet==3.3.0 mmpretrain==1.2.0 addict yapf termcolor ftfy prettytable \
  json_tricks munkres platformdirs wcwidth
$PIP download -q --no-deps --no-binary=:all: -d .whl xtcocotools==1.14.3
du -sh .whl
