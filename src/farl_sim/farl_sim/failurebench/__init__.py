"""FailureBench: the paper's four MetaWorld v3 tasks with intervention-requiring (IR) failures.

Importing this package registers the gymnasium ids
  FailureBench/BoundedPush-v0      push-v3, puck must stay in a bounded region
  FailureBench/BoundedSoccer-v0    soccer-v3, ball must stay in bounds unless it goes in the goal
  FailureBench/FragilePushWall-v0  push-wall-v3, the block must never touch the wall
  FailureBench/ObstructedPush-v0   push-v3 plus a vase that nothing may touch
each with a 200-step time limit (override with gymnasium.make(id, max_episode_steps=N)).
Short names for configs and the CLI: TASKS / SPECS keys "bounded-push", "bounded-soccer",
"fragile-push-wall", "obstructed-push".  Geometry: geometry.py; env semantics: env.py.
"""

import gymnasium as gym

from farl_sim.failurebench.env import FailureBenchEnv
from farl_sim.failurebench.experts import expert_action, failure_action, noisy_expert_action, recovery_action
from farl_sim.failurebench.geometry import DEFAULT_MAX_EPISODE_STEPS
from farl_sim.failurebench.registry import SPECS, TASKS, FailureBenchTask, get_task

for _task in TASKS.values():
    if _task.gym_id not in gym.registry:
        gym.register(id=_task.gym_id, entry_point="farl_sim.failurebench.env:FailureBenchEnv",
                     kwargs={"task": _task.name, "max_episode_steps": None},
                     max_episode_steps=DEFAULT_MAX_EPISODE_STEPS)

__all__ = ["SPECS", "TASKS", "FailureBenchEnv", "FailureBenchTask", "expert_action", "failure_action", "get_task",
           "noisy_expert_action", "recovery_action"]
