#!/usr/bin/env bash
# The README's test command: setup (idempotent), ruff, then pytest over every package's test/
# folder and the cross-package tests/ (which include the colcon build + installed-layout check
# and the farl_interfaces CDR round trip).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export MUJOCO_GL=${MUJOCO_GL:-osmesa}
.venv/bin/ruff check .
.venv/bin/python -m pytest "$@"
