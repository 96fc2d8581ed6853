"""FailureBenchEnv: a MetaWorld v3 task with an IR-failure signal, a time limit and seeded resets.

Per step, `info` carries MetaWorld's own keys plus
  cost       float 0/1, C(s, a) of paper Eq. 1: 1 on the step where the IR failure happens;
  ir_failure bool, the same event;
  success    bool, MetaWorld's success criterion for the wrapped task.
The rule (failures.py) is applied after each of the 5 physics substeps of a step, so a touch
shorter than a step still counts.  An IR failure terminates the episode.  Success does not
(MetaWorld semantics: the policy must keep the object at the goal, and the return keeps
counting), so an episode ends on an IR failure or on the time limit only.

The observation is MetaWorld's 39-d vector, goal included (MetaWorld hides it by default), as
float32.  MetaWorld samples object and goal from its own generator, which this env replaces with
its gymnasium `np_random`, so `reset(seed=s)` reproduces the same task and the same rollout.

Time limit: `max_episode_steps` steps (default 200), then truncated=True.  The registered gym ids
pass `max_episode_steps=None` and let gymnasium's TimeLimit (200 by default) do it instead, so
`gymnasium.make(id, max_episode_steps=N)` works as usual.
"""

from __future__ import annotations

import sys
from typing import Any, SupportsFloat

import gymnasium as gym
import mujoco
import numpy as np

from farl_sim.failurebench.failures import object_position, watched
from farl_sim.failurebench.geometry import DEFAULT_MAX_EPISODE_STEPS
from farl_sim.failurebench.registry import get_task

_SETTLE_STEPS = 50  # env-steps of mocap tracking to move the hand (MetaWorld's own hand reset uses 50)
_MAX_NEAR_FAILURE_TRIES = 20
_ARM_DOFS = 9  # Sawyer arm (7) and fingers (2) come first in qpos and qvel; the task object follows


class FailureBenchEnv(gym.Env[np.ndarray, np.ndarray]):
    """One of the four FailureBench tasks; `task` is a short name ("bounded-push") or a gym id.

    reset options: {"near_failure": True} starts from a sampled near-failure state (see
    near_failure.py for what that means per task); used to record recovery demonstrations.
    """

    metadata = {"render_modes": ["rgb_array", "depth_array"], "render_fps": 80}

    def __init__(self, task: str, max_episode_steps: int | None = DEFAULT_MAX_EPISODE_STEPS,
                 render_mode: str | None = None, camera_name: str | None = None) -> None:
        self.task = get_task(task)
        self.max_episode_steps = max_episode_steps
        self.render_mode = render_mode
        mw = watched(self.task.metaworld_class)(render_mode=render_mode, camera_name=camera_name)
        mw._partially_observable = False
        del mw.sawyer_observation_space  # cached with the goal hidden; recomputed with it visible
        mw._freeze_rand_vec = False
        mw.seeded_rand_vec = True
        mw._set_task_called = True
        mw.max_path_length = sys.maxsize  # this env owns the time limit; MetaWorld would raise past its own
        self.metaworld = mw
        self.rule = self.task.make_rule(mw.model)
        mw.failure_rule = self.rule
        # Unbounded: MetaWorld's own bounds are degenerate for some goal coordinates (soccer goal z is 0..0).
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(len(self.task.spec.observation_names),),
                                                dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(4,), dtype=np.float32)
        self._steps = 0

    # -- gymnasium API ------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.metaworld.np_random = self.np_random  # one seeded stream for task sampling and our own
        self.metaworld.reset()
        self._steps = 0
        if (options or {}).get("near_failure"):
            self._start_near_failure()
        return self.observation(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        act = np.clip(np.asarray(action, dtype=np.float32).reshape(4), -1.0, 1.0)
        (obs, reward, _, _, info), failure_in_substep = self.metaworld.step_watched(act)
        self._steps += 1
        failure = failure_in_substep or self.in_failure()
        info = {**info, "cost": float(failure), "ir_failure": failure, "success": bool(info["success"])}
        truncated = (not failure and self.max_episode_steps is not None and self._steps >= self.max_episode_steps)
        return obs.astype(np.float32), float(reward), failure, truncated, info

    def render(self) -> np.ndarray | None:
        return self.metaworld.render()

    def close(self) -> None:
        self.metaworld.close()

    # -- state queries and placement (near-failure starts, tests) -----------------------------

    def observation(self) -> np.ndarray:
        """The current 39-d observation, previous frame set equal to the current one (as after reset)."""
        mw = self.metaworld
        mw._prev_obs = mw._get_curr_obs_combined_no_goal()
        return mw._get_obs().astype(np.float32)

    def in_failure(self) -> bool:
        """Whether the current MuJoCo state is an IR failure under this task's rule."""
        return self.rule.is_failure(self.metaworld)

    def failure_margin(self) -> float:
        """Distance to an IR failure in metres (> 0 safe): edge distance, or geom gap to wall/vase."""
        return self.rule.margin(self.metaworld)

    @property
    def object_position(self) -> np.ndarray:
        return object_position(self.metaworld)

    @property
    def goal_position(self) -> np.ndarray:
        return np.asarray(self.metaworld._target_pos, dtype=float).copy()

    @property
    def hand_position(self) -> np.ndarray:
        return self.metaworld.get_endeff_pos().copy()

    def place_object(self, position: np.ndarray, velocity: np.ndarray | None = None) -> np.ndarray:
        """Teleport the task object to `position` (x, y, z of its centre) with linear `velocity`; return obs."""
        mw = self.metaworld
        qpos, qvel = mw.data.qpos.copy(), mw.data.qvel.copy()
        qpos[_ARM_DOFS:_ARM_DOFS + 3] = position  # the task object's free joint: qpos 9:16, qvel 9:15
        qvel[_ARM_DOFS:_ARM_DOFS + 6] = 0.0
        if velocity is not None:
            qvel[_ARM_DOFS:_ARM_DOFS + 3] = velocity
        mw.set_state(qpos, qvel)
        return self.observation()

    def place_hand(self, position: np.ndarray, grip: float = -1.0) -> np.ndarray:
        """Move the hand body to `position` with gripper effort `grip` (-1 open, 1 closed); return obs.

        Contacts are switched off while the mocap drags the arm there, so the hand passes through
        the object, the wall or the vase instead of pushing them; the object is held where it was.
        """
        mw = self.metaworld
        target = np.clip(position, mw.mocap_low, mw.mocap_high)
        object_qpos, object_qvel = mw.data.qpos[_ARM_DOFS:].copy(), mw.data.qvel[_ARM_DOFS:].copy()
        flags = mw.model.opt.disableflags
        mw.model.opt.disableflags = flags | int(mujoco.mjtDisableBit.mjDSBL_CONTACT)
        try:
            for _ in range(_SETTLE_STEPS):
                mw.data.mocap_pos[0] = target
                mw.data.mocap_quat[0] = [1.0, 0.0, 1.0, 0.0]
                mw.do_simulation([grip, -grip], mw.frame_skip)
        finally:
            mw.model.opt.disableflags = flags
        mw.data.qpos[_ARM_DOFS:], mw.data.qvel[_ARM_DOFS:] = object_qpos, object_qvel
        mujoco.mj_forward(mw.model, mw.data)
        return self.observation()

    def _start_near_failure(self) -> None:
        """Sample near-failure starts until one is not already a failure (contacts are checked after placing)."""
        for _ in range(_MAX_NEAR_FAILURE_TRIES):
            self.task.sample_near_failure(self, self.np_random)
            if not self.in_failure() and self.failure_margin() > 0.0:
                return
        raise RuntimeError(f"{self.task.name}: no near-failure start without a failure in "
                           f"{_MAX_NEAR_FAILURE_TRIES} tries (check near_failure.py against the geometry)")
