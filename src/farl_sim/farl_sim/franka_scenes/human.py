"""The scripted "human" of Disturbed Push: moves the vase around the workspace during an episode.

In the paper a person moves a decorative flower at random while the robot pushes.  Ours walks the
vase between random waypoints of the task's obstacle region at a constant 5 cm/s (a slow,
careful hand: 1 cm per 5 Hz control step), and stands still for 0.5-2 s at each waypoint.
Like a careful person it never drives the vase into the puck or the gripper: a step that would
bring it within `clearance` (3 cm) beyond contact is not taken: it stays put this step and
picks another waypoint.  So every IR
failure in the scene is the policy's doing, while the policy still has to avoid an obstacle that
moves into its way.  Waypoints respect the task's keepouts (never near the goal, nor where the puck
is), so the task stays solvable.

Pure numpy on positions; the scene feeds it the vase, puck, end-effector and goal positions and
moves the vase (a mocap body) to where it says.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from farl_core.franka_tasks import DisturbedPushGeometry


@dataclass(frozen=True)
class HumanMotion:
    """How the scripted human moves the vase (metres, seconds)."""

    speed: float = 0.05                          # m/s while moving
    pause: tuple[float, float] = (0.5, 2.0)      # s standing still at each waypoint
    clearance: float = 0.03                      # m kept beyond contact from the puck and the gripper
    start_delay: tuple[float, float] = (0.0, 2.0)  # s before the first move of an episode


DEFAULT_HUMAN_MOTION = HumanMotion()


class ScriptedHuman:
    """Stateful within an episode; `reset` at each episode start, then `step` with increasing times."""

    def __init__(self, geometry: DisturbedPushGeometry, motion: HumanMotion = DEFAULT_HUMAN_MOTION) -> None:
        self.geometry = geometry
        self.motion = motion
        self._waypoint: np.ndarray | None = None
        self._still_until = 0.0
        self._last_time = 0.0

    def reset(self, rng: np.random.Generator, time: float = 0.0) -> None:
        self._waypoint = None
        self._last_time = time
        self._still_until = time + float(rng.uniform(*self.motion.start_delay))

    def step(self, time: float, obstacle: np.ndarray, object_position: np.ndarray, ee_position: np.ndarray,
             goal: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The vase's next position (3,) at `time` (seconds since the episode start)."""
        obstacle = np.asarray(obstacle, dtype=float)
        elapsed = max(0.0, time - self._last_time)
        self._last_time = time
        if time < self._still_until:
            return obstacle.copy()
        if self._waypoint is None:
            # a waypoint clear of the goal and of where the puck is now (keepouts of the task geometry)
            xyz = self.geometry.sample_obstacle(rng, np.asarray(goal, dtype=float), np.asarray(object_position))
            if xyz is None:  # the puck sits where every allowed spot is: stay put, try again next step
                return obstacle.copy()
            self._waypoint = xyz[:2]
        offset = self._waypoint - obstacle[:2]
        distance = float(np.linalg.norm(offset))
        travel = self.motion.speed * elapsed
        if travel >= distance:
            candidate_xy = self._waypoint.copy()
        else:
            candidate_xy = obstacle[:2] + offset * (travel / distance)
        limit = self.geometry.contact_margin + self.motion.clearance
        before = self.geometry.obstacle_gap(obstacle[:2], object_position, ee_position)
        after = self.geometry.obstacle_gap(candidate_xy, object_position, ee_position)
        if after < limit and after < before:
            self._waypoint = None  # the puck or the gripper is in the way: stay, and head elsewhere next time
            return obstacle.copy()
        if travel >= distance:
            self._waypoint = None
            self._still_until = time + float(rng.uniform(*self.motion.pause))
        return np.array([candidate_xy[0], candidate_xy[1], obstacle[2]])
