#!/usr/bin/env bash
# The README's main command: the paper's real-robot experiment in miniature on franky-sim.
# Setup (idempotent), then on the Franka Bounded Soccer scene: FARL (shielded) and Uni-O4 fine-tune
# the same shipped pretrained policy side by side for 25 episodes each, through the whole hardware
# path (bridge on franky-sim, simulated D435, perception, task monitor, simulated human), and the
# failure/return table is printed. The shipped checkpoints (checkpoints/franka/) were made by
#   farl bench franka --tasks bounded-soccer --pretrain-only --out checkpoints/franka
# Re-running resumes (finished episodes are kept); pass --out DIR for a fresh run, --episodes N, or
# any other `farl bench franka` option.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
# ROS 2 (wheels or the sourced distro) and farl_interfaces, without the bootstrapper's re-exec.
source .venv/farl-ros.env
# EGL, not osmesa: with MUJOCO_GL=osmesa, importing MetaWorld next to torch segfaults the process.
export MUJOCO_GL=${MUJOCO_GL:-egl}
exec .venv/bin/farl bench franka --tasks bounded-soccer --pretrained checkpoints/franka --episodes 25 \
    --out runs/demo "$@"
