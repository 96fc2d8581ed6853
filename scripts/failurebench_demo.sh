#!/usr/bin/env bash
# A documented example (the main command before the Franka stack): the paper in miniature on FailureBench.
# Setup (idempotent), then on FailureBench Bounded Soccer: scripted task and recovery demos (Minari),
# offline pretraining, failure demos from the pretrained policy, world model, calibration, and
# online fine-tuning of FARL and Uni-O4 side by side from the same policy and seed. Prints the
# comparison table and the plots' paths. Re-running resumes (finished stages are kept); pass
# --out DIR for a fresh run, or any other `farl bench failurebench` option.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
# ROS 2 (wheels or the sourced distro) and farl_interfaces, without the bootstrapper's re-exec.
source .venv/farl-ros.env
# EGL, not osmesa: with MUJOCO_GL=osmesa, importing MetaWorld next to torch segfaults the process
# (seen in torch optimiser set-up); Mesa EGL renders offscreen on CPU machines too.
export MUJOCO_GL=${MUJOCO_GL:-egl}
exec .venv/bin/farl bench failurebench --tasks bounded-soccer --methods uni-o4 farl --seeds 0 \
    --steps 8192 --jobs 2 --out runs/failurebench-demo "$@"
