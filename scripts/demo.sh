#!/usr/bin/env bash
# The README's main command: setup (idempotent), then the main job on the embedded simulation.
# Until the FailureBench job lands this reports what the machine can run.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export MUJOCO_GL=${MUJOCO_GL:-osmesa}
exec .venv/bin/farl doctor "$@"
