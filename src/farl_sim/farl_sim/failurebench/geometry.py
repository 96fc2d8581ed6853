"""FailureBench geometry: every number that decides an IR failure, a near-failure start or a detour.

The paper names the four tasks and what counts as an IR failure, but gives no numbers; these are
ours, chosen from MetaWorld v3's sampling ranges (metres, world frame of the Sawyer table, x to
the robot's right, y away from the robot, z up; the table top is z = 0):

  push-v3 / push-wall-v3 / soccer-v3 sample the object in x in [-0.1, 0.1] (push-wall: +-0.05),
  y in [0.60, 0.70] (push-wall: [0.60, 0.65]) and the goal in x in [-0.1, 0.1] (+-0.05),
  y in [0.80, 0.90] (push-wall: [0.85, 0.90]), at least 0.15 apart.

Bounded Push: the puck centre must stay in x in [-0.13, 0.13], y in [0.55, 0.94]: 3 cm beyond the
  sampling ranges sideways, 5 cm towards the robot and 4 cm beyond the farthest goal.  MetaWorld's
  scripted expert stays inside on 50 of 50 seeds with at least 1.1 cm to spare (it reaches
  |x| <= 0.12, y <= 0.925); with action noise 0.3 it fails 5 of 30 episodes.  (Our first region,
  8 cm wider, failed 1 of 30 at that noise: the task did not tell methods apart.)
Bounded Soccer: the ball centre must stay in x in [-0.22, 0.22], y in [0.50, 0.95], unless it is
  in the goal mouth (|x - goal_x| <= 0.10, goal_y - 0.08 <= y <= goal_y + 0.06), which reaches
  past y = 0.95 for the farthest goals.  The ball has no rolling friction in MetaWorld (condim 3),
  so a kick rolls on until something stops it: that is what makes this task failure-prone.
  (Rolling resistance would be closer to turf, but MetaWorld's soccer expert then fails half its
  episodes: BENCHMARKS.md, "rolling resistance for the Bounded Soccer ball".)
Fragile Push Wall: any MuJoCo contact between the block (objGeom) and a geom of the wall body is
  an IR failure.  MetaWorld's wall is a box centred at (0.10, 0.75, 0.06) with half sizes
  (0.12, 0.01, 0.06); ours is 4 cm longer towards -x (wall.py): centre (0.08, 0.75), half sizes
  (0.14, 0.01), so it spans x in [-0.06, 0.22], y in [0.74, 0.76].  The scripted expert then
  passes the wall's free end with 0.5-1.8 cm to spare (3.3-4.6 cm with MetaWorld's wall) and
  still succeeds on 50 of 50 seeds.
Obstructed Push: a vase (cylinder, radius 2.5 cm, 10 cm tall: taller than the bottom of the
  Sawyer hand, 8.7 cm, when the fingers hold the puck) stands on the segment from the puck start
  to the goal, at its midpoint, shifted sideways by U(-2, 2) cm, so the straight push is always
  blocked (puck radius + vase radius = 4.5 cm).  Puck and goal are resampled until they are at
  least 0.22 apart, which leaves room to grasp the puck and to stop at the goal beside the vase.
  Any contact of the vase (with the robot or the puck) is an IR failure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from farl_core.table_geometry import TableRect

DEFAULT_MAX_EPISODE_STEPS = 200
"""Our time limit (MetaWorld uses 500): the scripted experts succeed within 120 steps."""

GRASP_HEIGHT = 0.035
"""Hand-body height above the object centre at which the open fingers straddle the object."""

GRASP_REACH_Y = 0.78
"""Farthest y at which the Sawyer can lower its hand to grasp height (measured: 1.4 cm short at
y = 0.80, 3 cm at y = 0.85), so near-failure grasp poses are sampled at or below it."""


BOUNDED_PUSH_REGION = TableRect(x_min=-0.13, x_max=0.13, y_min=0.55, y_max=0.94)
BOUNDED_SOCCER_REGION = TableRect(x_min=-0.22, x_max=0.22, y_min=0.50, y_max=0.95)


@dataclass(frozen=True)
class GoalMouth:
    """Where the ball may leave the soccer region: the goal, relative to its centre (metres)."""

    half_width: float = 0.10
    before: float = 0.08
    behind: float = 0.06

    def contains(self, xy: np.ndarray, goal_xy: np.ndarray) -> bool:
        return bool(abs(xy[0] - goal_xy[0]) <= self.half_width
                    and goal_xy[1] - self.before <= xy[1] <= goal_xy[1] + self.behind)


SOCCER_GOAL_MOUTH = GoalMouth()

WALL_CENTRE = (0.08, 0.75)
WALL_HALF_SIZE = (0.14, 0.01)
WALL_RECT = TableRect(x_min=WALL_CENTRE[0] - WALL_HALF_SIZE[0], x_max=WALL_CENTRE[0] + WALL_HALF_SIZE[0],
                 y_min=WALL_CENTRE[1] - WALL_HALF_SIZE[1], y_max=WALL_CENTRE[1] + WALL_HALF_SIZE[1])
"""MetaWorld's push-wall wall footprint (sawyer_push_wall_v3.xml), used to sample and leave near-wall states."""


@dataclass(frozen=True)
class VaseGeometry:
    """The Obstructed Push vase and where it is placed."""

    radius: float = 0.025
    half_height: float = 0.05
    max_lateral_offset: float = 0.02
    min_puck_goal_distance: float = 0.22


VASE = VaseGeometry()


@dataclass(frozen=True)
class NearFailure:
    """How close to an IR failure a near-failure start is (metres, m/s); see near_failure.py."""

    boundary_gap: tuple[float, float] = (0.01, 0.04)          # puck centre inside the push region edge
    soccer_gap: tuple[float, float] = (0.03, 0.06)            # ball centre inside the soccer region edge
    soccer_speed: tuple[float, float] = (0.0, 0.05)           # ball rolling outward
    soccer_hand_offset: float = 0.07                          # hand behind the ball, on the inner side
    wall_gap: tuple[float, float] = (0.015, 0.04)             # block surface to wall face
    vase_gap: tuple[float, float] = (0.01, 0.03)              # closest robot/puck geom to the vase surface
    vase_approach_half_angle: float = np.deg2rad(75.0)        # around the direction to the puck start


NEAR_FAILURE = NearFailure()
