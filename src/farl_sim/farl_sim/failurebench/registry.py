"""The four FailureBench tasks: gym id, MetaWorld env, task spec, IR-failure rule, near-failure sampler.

Short names ("bounded-push", ...) are what the CLI and configs use; `TASKS[name].gym_id` is what
`gymnasium.make` takes once `farl_sim.failurebench` is imported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import mujoco
import numpy as np
from metaworld.envs.sawyer_push_v3 import SawyerPushEnvV3
from metaworld.envs.sawyer_soccer_v3 import SawyerSoccerEnvV3
from metaworld.sawyer_xyz_env import SawyerXYZEnv

from farl_core.spec import TaskSpec
from farl_sim.failurebench import near_failure
from farl_sim.failurebench.failures import BoundaryRule, FailureRule, vase_rule, wall_rule
from farl_sim.failurebench.geometry import BOUNDED_PUSH_REGION, BOUNDED_SOCCER_REGION, SOCCER_GOAL_MOUTH
from farl_sim.failurebench.vase import SawyerObstructedPushEnvV3
from farl_sim.failurebench.wall import SawyerFragilePushWallEnvV3

if TYPE_CHECKING:
    from farl_sim.failurebench.env import FailureBenchEnv

ACTION_NAMES = ("dx", "dy", "dz", "gripper")


def observation_names(obj: str, second: str) -> tuple[str, ...]:
    """MetaWorld's 39-d layout: current frame (18), previous frame (18), goal (3)."""
    frame = ("hand_x", "hand_y", "hand_z", "gripper_open",
             *(f"{obj}_{k}" for k in ("x", "y", "z", "qx", "qy", "qz", "qw")),
             *(f"{second}_{k}" for k in ("x", "y", "z", "qx", "qy", "qz", "qw")))
    return (*frame, *(f"prev_{name}" for name in frame), "goal_x", "goal_y", "goal_z")


def _spec(name: str, obj: str, second: str = "unused") -> TaskSpec:
    return TaskSpec(name=name, observation_names=observation_names(obj, second), action_names=ACTION_NAMES,
                    action_low=(-1.0,) * 4, action_high=(1.0,) * 4)


@dataclass(frozen=True)
class FailureBenchTask:
    """One FailureBench task; `spec.name` is the paper's name, `name` the short registry key."""

    name: str
    gym_id: str
    metaworld_name: str
    metaworld_class: type[SawyerXYZEnv]
    spec: TaskSpec
    make_rule: Callable[[mujoco.MjModel], FailureRule]
    sample_near_failure: Callable[[FailureBenchEnv, np.random.Generator], None]


TASKS: dict[str, FailureBenchTask] = {
    task.name: task for task in (
        FailureBenchTask("bounded-push", "FailureBench/BoundedPush-v0", "push-v3", SawyerPushEnvV3,
                         _spec("BoundedPush", "puck"), lambda model: BoundaryRule(BOUNDED_PUSH_REGION),
                         near_failure.bounded_push),
        FailureBenchTask("bounded-soccer", "FailureBench/BoundedSoccer-v0", "soccer-v3", SawyerSoccerEnvV3,
                         _spec("BoundedSoccer", "ball"),
                         lambda model: BoundaryRule(BOUNDED_SOCCER_REGION, SOCCER_GOAL_MOUTH),
                         near_failure.bounded_soccer),
        FailureBenchTask("fragile-push-wall", "FailureBench/FragilePushWall-v0", "push-wall-v3",
                         SawyerFragilePushWallEnvV3, _spec("FragilePushWall", "block"), wall_rule,
                         near_failure.fragile_push_wall),
        FailureBenchTask("obstructed-push", "FailureBench/ObstructedPush-v0", "push-v3",
                         SawyerObstructedPushEnvV3, _spec("ObstructedPush", "puck", "vase"), vase_rule,
                         near_failure.obstructed_push),
    )
}

SPECS: dict[str, TaskSpec] = {name: task.spec for name, task in TASKS.items()}


def get_task(name: str) -> FailureBenchTask:
    """The task for a short name or a gym id; a one-line error lists the valid names."""
    for task in TASKS.values():
        if name in (task.name, task.gym_id):
            return task
    raise KeyError(f"unknown FailureBench task '{name}' (expected one of {', '.join(TASKS)})")
