#!/usr/bin/env bash
# The README's test command: setup (idempotent), ruff, then pytest over every package's test/
# folder and the cross-package tests/ (which include the colcon build + installed-layout check
# and the farl_interfaces CDR round trip).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
# ROS 2 (wheels or the sourced distro) and farl_interfaces, without the bootstrapper's re-exec.
source .venv/farl-ros.env
# EGL, not osmesa: with MUJOCO_GL=osmesa, importing MetaWorld next to torch segfaults the process
# (seen in torch optimiser set-up); Mesa EGL renders offscreen on CPU machines too.
export MUJOCO_GL=${MUJOCO_GL:-egl}
.venv/bin/ruff check .
# Both cores: test modules are spread over two workers (a module's tests and fixtures stay
# together); each worker's torch uses one thread so the two do not fight over the cores.
# FARL_TEST_WORKERS=0 runs everything in this process (for -x, pdb, or a single test).
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
.venv/bin/python -m pytest -n "${FARL_TEST_WORKERS:-2}" --dist loadscope --no-loadscope-reorder "$@"
