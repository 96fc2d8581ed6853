"""Probe (issue 16), not a shipped option: a world model whose constraint head learns "a failure within
the next K steps" instead of "a failure at this step".

At the 10-step calibration window the shipped C_H alarms on the tail of a one-step failure head
(`imagination_probe.py`); Q-risk, which predicts failures over the whole future, alarms earlier and wins
the wall.  This trains the world model (Eq. 4, everything else as configured) on the same task and
failure demos with each row's cost relabelled to "a cost = 1 step at t..t+K in its episode", and writes
it where a `farl bench failurebench` output folder expects it, so the grid then calibrates and runs FARL
with it as with any other world model:

    python docs/benchmarks/probes-amd-2026-12-07-night/failure_within_probe.py SRC OUT fragile-push-wall 10

SRC is a finished `farl bench failurebench` folder; OUT gets SRC's config.json and links to every
pretraining artefact of the task but `world_model` and `calibration.json`.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path

from farl.benchmark.config import FailureBenchConfig
from farl.benchmark.pretrain import split_episodes
from farl.tasks import get_task
from farl.training import train_world_model_job
from farl_core.config import from_mapping
from farl_core.datasets import load_dataset
from farl_core.transitions import Transitions
from farl_safety.calibration import failure_within_horizon

SHARED = ("demos", "task_policy", "recovery_policy", "q_risk", "reference.json")


def main(src: Path, out: Path, task_name: str, steps_ahead: int) -> None:
    config = from_mapping(FailureBenchConfig, json.loads((src / "config.json").read_text())["config"],
                          where=str(src / "config.json"))
    task, source = get_task(task_name), src / task_name / "pretrain"
    root = out / task_name / "pretrain"
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(src / "config.json", out / "config.json")
    for name in SHARED:
        if not (root / name).exists():
            (root / name).symlink_to(source / name)
    task_data = load_dataset(source / "demos" / "task", task.spec)[0]
    fit, _ = split_episodes(load_dataset(source / "demos" / "failure", task.spec)[0], config.demos.heldout_fraction)
    data = Transitions.concat([task_data, fit])
    relabelled = replace(data, cost=failure_within_horizon(data, steps_ahead).astype(data.cost.dtype))
    print(f"{task_name}: {int(data.cost.sum())} failure steps -> {int(relabelled.cost.sum())} rows with a failure "
          f"within {steps_ahead} steps, of {len(data)}", flush=True)
    train_world_model_job(relabelled, task, config.training, root / "world_model", seed=0)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
