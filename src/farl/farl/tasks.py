"""Tasks the CLI can train, fine-tune and benchmark on: the point mass, the four FailureBench tasks, the Franka tasks.

Each entry is a gymnasium env whose `info` carries `cost`, `ir_failure` and `success`, with its
task spec, scripted expert and scripted recovery controller.  The three Franka tasks are here as
franka-fragile-push-wall, franka-disturbed-push and franka-bounded-soccer (FailureBench has tasks
named fragile-push-wall and bounded-soccer too); they use FrankaSim/<Task>-v0 (bridge + franky-sim,
ground-truth objects) as their env; their `farl demos` go through the robot loop instead
(farl.demo_recording: perception in the loop), so `Task.demonstrations` is not used for them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import gymnasium as gym
import numpy as np

from farl_core.errors import FarlError
from farl_core.franka_tasks import FRANKA_TASKS, FrankaTask
from farl_core.spec import TaskSpec
from farl_core.transitions import Transitions
from farl_sim import failurebench, franka_scenes, point_mass
from farl_sim.franka_scenes.controllers import scripted_controller
from farl_sim.recording import Controller, record_episodes

ROLES = ("task", "recovery", "failure")  # the order of Task's expert, recovery and failure fields


@dataclass(frozen=True)
class Task:
    spec: TaskSpec
    make_env: Callable[[], gym.Env]
    env_id: str  # registered gymnasium id, recorded in Minari datasets
    expert: Callable[[gym.Env], Controller]    # scripted expert for an env instance (normalised return 100)
    recovery: Callable[[gym.Env], Controller]  # scripted recovery, run from reset(options={"near_failure": True})
    failure: Callable[[gym.Env], Controller]   # guided failure: takes over part of the failure-demo episodes
    # The task's own demo generator (kind, count, seed), when it has one beyond `scripted`.
    custom_demonstrations: Callable[[str, int, int], Transitions] | None = None

    def scripted(self, kind: str, episodes: int, seed: int, noise: float, max_steps: int | None = None,
                 progress: bool = False) -> Transitions:
        """Task demos: the noisy scripted expert; recovery demos: scripted recovery from near-failure starts."""
        env = self.make_env()
        rng = np.random.default_rng(seed)
        if kind == "task":
            return record_episodes(env, self.expert(env), episodes, rng, self.spec, noise, progress=progress,
                                   desc="task demos")
        if kind == "recovery":
            return record_episodes(env, self.recovery(env), episodes, rng, self.spec, noise,
                                   options=lambda k: {"near_failure": True}, max_steps=max_steps,
                                   progress=progress, desc="recovery demos")
        raise FarlError(f"{self.spec.name} has no scripted {kind} demos: failure demos come from the pretrained "
                        "task policy (`farl demos failure --policy RUN_DIR`)")

    def demonstrations(self, kind: str, count: int, seed: int) -> Transitions:
        """`farl demos` without --policy: the task's own generator, else `scripted` at paper-style defaults
        (task demos: expert + N(0, 0.3^2) noise, medium-expert quality; recovery clips of at most 30 steps)."""
        if self.custom_demonstrations is not None:
            return self.custom_demonstrations(kind, count, seed)
        noise, max_steps = (0.3, None) if kind == "task" else (0.1, 30)
        return self.scripted(kind, count, seed, noise, max_steps, progress=True)


def _with_env(controller: Callable[[gym.Env, np.ndarray], np.ndarray]) -> Callable[[gym.Env], Controller]:
    """FailureBench controllers read the env (object geometry); bind one to an env instance."""
    return lambda env: lambda obs: controller(env, obs)


FRANKA_PREFIX = "franka-"


def franka_task_id(name: str) -> str:
    """The name a Franka task has here: `franka-<name>` (FailureBench has its own fragile-push-wall and
    bounded-soccer, different tasks with other specs); `farl run` and `farl bench franka` take `<name>`."""
    return f"{FRANKA_PREFIX}{name}"


def _franka_controller(task: FrankaTask, role: str, env: gym.Env) -> Controller:
    """The Franka controllers read the observation only (what the robot loop sees), never the env."""
    del env
    return scripted_controller(task, role)


TASKS: dict[str, Task] = {
    "point-mass": Task(point_mass.SPEC, point_mass.BoundedPointMassEnv, "FARL/BoundedPointMass-v0",
                       lambda env: point_mass.expert_action, lambda env: point_mass.recovery_action,
                       lambda env: point_mass.failure_action, point_mass.demonstrations),
    **{name: Task(bench.spec, partial(gym.make, bench.gym_id), bench.gym_id, _with_env(failurebench.expert_action),
                  _with_env(failurebench.recovery_action), _with_env(failurebench.failure_action))
       for name, bench in failurebench.TASKS.items()},
    **{franka_task_id(name): Task(franka.spec, partial(gym.make, franka_scenes.GYM_IDS[name]),
                                  franka_scenes.GYM_IDS[name],
                                  *(partial(_franka_controller, franka, role) for role in ROLES))
       for name, franka in FRANKA_TASKS.items()},
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise FarlError(f"unknown task '{name}' (available: {', '.join(sorted(TASKS))})")
    return TASKS[name]
