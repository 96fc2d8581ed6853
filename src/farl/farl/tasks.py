"""Tasks the CLI can train and fine-tune on: name -> (spec, environment factory, demo generator).

FailureBench and the Franka scenes register here as they land; every entry is a gymnasium env
whose `info` carries `cost`, `ir_failure` and `success`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym

from farl_core.errors import FarlError
from farl_core.spec import TaskSpec
from farl_core.transitions import Transitions
from farl_sim import point_mass
from farl_sim.recording import Controller


@dataclass(frozen=True)
class Task:
    spec: TaskSpec
    make_env: Callable[[], gym.Env]
    demonstrations: Callable[[str, int, int], Transitions]  # (kind, count, seed) -> scripted demos
    env_id: str  # registered gymnasium id, recorded in Minari datasets
    expert: Callable[[gym.Env], Controller]    # scripted expert for an env instance (normalised return 100)
    recovery: Callable[[gym.Env], Controller]  # scripted recovery, run from reset(options={"near_failure": True})


TASKS: dict[str, Task] = {
    "point-mass": Task(point_mass.SPEC, point_mass.BoundedPointMassEnv, point_mass.demonstrations,
                       "FARL/BoundedPointMass-v0", lambda env: point_mass.expert_action,
                       lambda env: point_mass.recovery_action),
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise FarlError(f"unknown task '{name}' (available: {', '.join(sorted(TASKS))})")
    return TASKS[name]
