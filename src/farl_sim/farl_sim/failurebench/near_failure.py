"""Near-failure starts: the states recovery demonstrations begin from (reset option near_failure=True).

Each sampler runs after a normal seeded reset (so the goal, and for Obstructed Push the vase, are
the task's own) and rearranges hand and object with the env's `place_hand` / `place_object`.
The numbers are in geometry.NEAR_FAILURE.

  bounded-push       puck centre 1-4 cm inside the left, right or near region edge, the open
                     gripper around it (the pose from which the expert drags): one careless drag and it is out.
  bounded-soccer     ball centre 3-6 cm inside the left, right or near edge, rolling outward at
                     0-5 cm/s (it never stops by itself), the closed gripper 7 cm behind it on the
                     inner side, as just after a kick the wrong way.
  fragile-push-wall  block surface 1.5-4 cm from the front face or an end of the wall, the open
                     gripper around it.
  obstructed-push    puck in the open gripper on the puck-start side of the vase (within +-75 degrees),
                     the closest robot or puck geom 1-3 cm from the vase surface.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from farl_sim.failurebench.geometry import (
    BOUNDED_PUSH_REGION,
    BOUNDED_SOCCER_REGION,
    GRASP_HEIGHT,
    GRASP_REACH_Y,
    NEAR_FAILURE,
    VASE,
    WALL_RECT,
    TableRect,
)

if TYPE_CHECKING:
    from farl_sim.failurebench.env import FailureBenchEnv

_EDGE_INSET = 0.03          # keep samples this far from the region corners
_SOCCER_HAND_Z = 0.05       # lowest hand height MetaWorld allows: the kicking height
_VASE_PLACEMENT_ITERS = 6   # hand placements to hit the sampled vase gap (the gap is linear in distance)
_VASE_GAP_TOLERANCE = 0.003


def _point_near_edge(region: TableRect, edge: int, gap: float,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A point `gap` inside edge 0 (x_min), 1 (x_max) or 2 (y_min), and that edge's outward normal.

    The far edge (y_max) is never used and points stay at y <= GRASP_REACH_Y: out there the hand
    cannot get down to the object, so neither the task policy nor a recovery could act on it.
    """
    if edge < 2:
        x = region.x_min + gap if edge == 0 else region.x_max - gap
        y = rng.uniform(region.y_min + _EDGE_INSET, min(region.y_max - _EDGE_INSET, GRASP_REACH_Y))
        return np.array([x, y]), np.array([-1.0 if edge == 0 else 1.0, 0.0])
    x = rng.uniform(region.x_min + _EDGE_INSET, region.x_max - _EDGE_INSET)
    return np.array([x, region.y_min + gap]), np.array([0.0, -1.0])


def _grasp_pose(env: FailureBenchEnv, xy: np.ndarray) -> None:
    """Object at `xy` on the table, open fingers around it."""
    z = env.object_position[2]
    env.place_hand(np.array([xy[0], xy[1], z + GRASP_HEIGHT]), grip=-1.0)
    env.place_object(np.array([xy[0], xy[1], z]))


def bounded_push(env: FailureBenchEnv, rng: np.random.Generator) -> None:
    xy, _ = _point_near_edge(BOUNDED_PUSH_REGION, int(rng.integers(3)), rng.uniform(*NEAR_FAILURE.boundary_gap), rng)
    _grasp_pose(env, xy)


def bounded_soccer(env: FailureBenchEnv, rng: np.random.Generator) -> None:
    xy, outward = _point_near_edge(BOUNDED_SOCCER_REGION, int(rng.integers(3)), rng.uniform(*NEAR_FAILURE.soccer_gap),
                                   rng)
    z = env.object_position[2]
    hand = xy - NEAR_FAILURE.soccer_hand_offset * outward
    env.place_hand(np.array([hand[0], hand[1], _SOCCER_HAND_Z]), grip=1.0)
    speed = rng.uniform(*NEAR_FAILURE.soccer_speed)
    env.place_object(np.array([xy[0], xy[1], z]), velocity=np.array([*(speed * outward), 0.0]))


def fragile_push_wall(env: FailureBenchEnv, rng: np.random.Generator) -> None:
    offset = env.metaworld.model.geom("objGeom").size[0] + rng.uniform(*NEAR_FAILURE.wall_gap)
    wall = WALL_RECT
    face = int(rng.integers(3))  # the back face (y >= 0.78) is beyond GRASP_REACH_Y
    if face == 0:
        xy = np.array([rng.uniform(wall.x_min, wall.x_max), wall.y_min - offset])
    else:
        xy = np.array([wall.x_min - offset if face == 1 else wall.x_max + offset, rng.uniform(wall.y_min, wall.y_max)])
    _grasp_pose(env, xy)


def obstructed_push(env: FailureBenchEnv, rng: np.random.Generator) -> None:
    mw = env.metaworld
    vase = mw.vase_position[:2]
    to_start = mw.obj_init_pos[:2] - vase
    angle = np.arctan2(to_start[1], to_start[0]) + rng.uniform(-1.0, 1.0) * NEAR_FAILURE.vase_approach_half_angle
    direction = np.array([np.cos(angle), np.sin(angle)])
    gap = rng.uniform(*NEAR_FAILURE.vase_gap)
    distance = VASE.radius + 0.06 + gap  # first guess: the hand reaches about 6 cm from the puck centre
    for _ in range(_VASE_PLACEMENT_ITERS):
        _grasp_pose(env, vase + distance * direction)
        error = gap - env.failure_margin()
        if abs(error) < _VASE_GAP_TOLERANCE:
            return
        distance += error
