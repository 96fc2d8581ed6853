"""The task monitor: what perception and the bridge report -> the task's observation, reward, cost and verdicts.

One call per control tick.  Its inputs are the contents of `/farl/objects` (tracked objects: name,
position, stale flag, the frame's stamp) and `/farl/robot_state` (end-effector position, gripper
width), plus the robot clock; its output is the step the agent learns from and the episode
manager ends episodes on.  The rules themselves are the task's pure functions (franka_tasks.py),
so a step means the same in simulation, replay and on the Panda.

A step is *unusable* rather than guessed when the inputs cannot be trusted:
  - an observed object was never seen, or has been unseen (stale: occluded, out of view) for
    longer than `max_unseen_s`: the tracker holds its last position, which is fine for a frame
    or two behind the arm and a guess after that;
  - the newest objects are older than `max_objects_age_s` on the robot clock (camera stalled or
    perception too slow): acting on them would mean acting on a world that has moved on.
The agent sends no action on an unusable step, so the bridge's watchdog holds the arm.  Static
objects (the wall) never make a step unusable: the task's rules use their calibrated geometry.

A NaN or infinite value in an input that claims to be fresh is not staleness but a broken
sensor or calibration: the observation check raises a one-line SpecError and the run stops.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from farl_core.config import param
from farl_core.franka_tasks import FrankaTask


class TrackedObject(Protocol):
    """One entry of `/farl/objects` (farl_perception's ObjectEstimate meets it)."""

    name: str
    position: np.ndarray
    stale: bool


class ObjectReport(Protocol):
    """The `/farl/objects` content (farl_perception's ObjectArray meets it)."""

    stamp: float
    objects: Sequence[TrackedObject]


class ArmReport(Protocol):
    """What the monitor reads of `/farl/robot_state` (farl_control's RobotStateSample meets it)."""

    ee_position: np.ndarray
    gripper_width: float


@dataclass(frozen=True)
class MonitorConfig:
    """When a step's inputs are too old to act on (robot-clock seconds)."""

    max_unseen_s: float = param(0.6, ge=0.0)       # an observed object may hide behind the arm for 3 ticks
    max_objects_age_s: float = param(0.5, gt=0.0)  # frame capture -> tick; a 5 Hz loop must not act on older


@dataclass(frozen=True)
class MonitorStep:
    """One tick's verdict. When not `usable`, only `reason` and `stamp` are meaningful."""

    usable: bool
    stamp: float                      # robot time of the tick
    reason: str = ""                  # why the step is unusable
    observation: np.ndarray | None = None
    reward: float = 0.0
    cost: float = 0.0                 # 1.0 on an IR failure (paper Eq. 1's C)
    success: bool = False
    ir_failure: bool = False
    objects: dict[str, np.ndarray] | None = None  # the positions the verdict was computed from


class TaskMonitor:
    """Stateful across ticks only for each object's last sighting; `reset` at each episode start."""

    def __init__(self, task: FrankaTask, config: MonitorConfig = MonitorConfig()) -> None:
        self.task = task
        self.config = config
        self.goal = np.asarray(task.geometry.goal_region.centre, dtype=float)
        self._last_seen: dict[str, float] = {}

    def reset(self, goal: np.ndarray) -> None:
        """A new episode towards `goal` (x, y in the base frame); forget earlier sightings."""
        self.goal = np.asarray(goal, dtype=float)[:2].copy()
        self._last_seen.clear()

    def step(self, objects: ObjectReport, arm: ArmReport, now: float) -> MonitorStep:
        """The observation, reward, cost and verdicts of this tick, or an unusable step with the reason."""
        by_name = {o.name: o for o in objects.objects}
        for name, estimate in by_name.items():
            if not estimate.stale:
                self._last_seen[name] = float(objects.stamp)
        age = now - float(objects.stamp)
        if age > self.config.max_objects_age_s:
            return MonitorStep(False, now, f"objects are {age:.2f} s old (limit {self.config.max_objects_age_s} s): "
                                           "camera stalled or perception too slow")
        for name in self.task.observed:
            if name not in by_name or name not in self._last_seen:
                return MonitorStep(False, now, f"'{name}' not seen yet")
            unseen = float(objects.stamp) - self._last_seen[name]
            if unseen > self.config.max_unseen_s:
                return MonitorStep(False, now,
                                   f"'{name}' unseen for {unseen:.2f} s (limit {self.config.max_unseen_s} s)")
        positions = {name: np.asarray(o.position, dtype=float) for name, o in by_name.items()
                     if name in self.task.observed}
        ee = np.asarray(arm.ee_position, dtype=float)
        observation = self.task.observation(ee, float(arm.gripper_width), positions, self.goal)  # SpecError on NaN
        cost = self.task.cost(positions, ee)
        return MonitorStep(True, now, observation=observation, reward=self.task.reward(positions, ee, self.goal),
                           cost=cost, success=self.task.success(positions, self.goal), ir_failure=cost > 0.0,
                           objects=positions)
