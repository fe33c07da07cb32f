#!/usr/bin/env bash
# Set up .venv (idempotent) and run the linter and the whole test suite
# (extra arguments go to pytest, e.g. -m 'not slow').
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_env.sh
.venv/bin/ruff check arsam arsam_mm tools tests configs
.venv/bin/python -m pytest -q "$@"
