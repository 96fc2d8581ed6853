"""The paper's three real-robot tasks (Section VI.C): geometry, task spec, observation, reward, IR failure, success.

Pure numpy on purpose: the MuJoCo scenes (farl_sim.franka_scenes) and the real Franka score an
episode with these same functions, fed with object positions (from the simulator there, from
perception at 5 Hz here), so an IR failure or a success means exactly the same thing in both.

Frame and units: the robot base frame (x forward, away from the robot; y to its left; z up),
metres.  The table top is the plane z = 0 the FR3 base stands on (franky-sim's ground plane).
An object's position is its centre (a cylinder's or a ball's centre, not the surface point a
camera sees): perception turns the seen surface into the centre with the object's known size.
The paper gives no numbers; these are ours, in a workspace x in [0.34, 0.75], y in [-0.25, 0.25]
in front of franky's default pose (end effector at (0.554, 0, 0.521)).  All of it is reachable at
2 cm above the table with the hand pointing down at the default yaw, within the FR3's joint limits
(checked with damped least-squares IK on franky-sim's model).

Fragile Push Wall: a fragile cup (cylinder, radius 3 cm, 6 cm tall) starts in x [0.40, 0.44],
  y [0.04, 0.12]; the goal is straight behind a wall, x [0.63, 0.66], y [0.04, 0.12].  The wall
  (2 cm thick, 8 cm tall) spans x [0.54, 0.56], y [-0.06, 0.22]: the cup must go round its free
  end, its centre passing at y < -0.095 (15 cm of room remain to the workspace edge), and a cup at
  the goal stands at least 4 cm clear of the wall's back face.  IR failure: the cup's footprint (a
  disc) comes within 5 mm of the wall's footprint while its bottom is below the wall top (the 5 mm
  margin declares contact slightly early: tracked positions are noisy, and the cup is fragile).
Disturbed Push: a puck (cylinder, radius 3 cm, 4 cm tall) starts in x [0.40, 0.44],
  y [-0.18, -0.10], the goal is x [0.60, 0.66], y [0.08, 0.16]; a vase (cylinder, radius 3.5 cm,
  14 cm tall) is kept by a human somewhere in x [0.46, 0.58], y [-0.08, 0.06], always at least
  11 cm from the goal and 10 cm from the puck's start, and moved during the episode.  The straight
  push from start to goal crosses that region, so the policy must detour or wait.  IR failure:
  the puck's disc or the gripper (GripperShape: two boxes around the end effector) within 5 mm of
  the vase cylinder (a gripper above the vase counts by its 3-D distance to the vase's top rim).
Bounded Soccer: a ball (radius 3.3 cm, a tennis ball) starts in x [0.42, 0.46], y [-0.05, 0.05];
  the goal area (a disc of radius 6 cm) is centred in x [0.60, 0.64], y [-0.10, 0.10].  IR
  failure: the ball centre leaves the boundary x [0.34, 0.75], y [-0.22, 0.22]; the farthest goal
  area edge is 5 cm inside the far boundary, so an over-hard kick is a failure, which is what makes
  this task failure-prone.
Success: the pushed object's (ball's) centre within success_radius of the goal, in the table plane.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from farl_core.errors import FarlError
from farl_core.spec import TaskSpec
from farl_core.table_geometry import TableRect

ACTION_NAMES = ("dx", "dy", "dz", "gripper")
"""End-effector displacement (scaled by the bridge) and gripper command, each in [-1, 1]."""

ROBOT_OBSERVATION_NAMES = ("ee_x", "ee_y", "ee_z", "gripper_width")

Objects = Mapping[str, np.ndarray]
"""Object name -> centre position (3,) in the base frame: what perception or the simulator reports."""


@dataclass(frozen=True)
class GripperShape:
    """The Franka Hand around franky's end-effector point, as two boxes, for contact checks from a position.

    Measured from franky-sim's FR3 collision meshes with the hand pointing down at franky's
    default yaw (fingers along base y), which the tasks keep: their actions only translate.
    Heights are relative to the end-effector point (between the fingertips).  The finger box
    is for the widest opening (8 cm), since the cost sees no gripper width: conservative.
    """

    finger_half_x: float = 0.011
    finger_half_y: float = 0.066     # 0.04 (half the opening) + 0.026 (finger's outer face)
    finger_z: tuple[float, float] = (-0.009, 0.045)
    hand_half_x: float = 0.032
    hand_half_y: float = 0.104
    hand_z: tuple[float, float] = (0.037, 0.129)

    def boxes(self, ee_position: np.ndarray) -> tuple[tuple[TableRect, float, float], ...]:
        """(footprint, z_bottom, z_top) of the fingers and of the hand body, in the base frame."""
        x, y, z = (float(v) for v in ee_position[:3])
        fingers = TableRect(x - self.finger_half_x, x + self.finger_half_x, y - self.finger_half_y,
                            y + self.finger_half_y)
        hand = TableRect(x - self.hand_half_x, x + self.hand_half_x, y - self.hand_half_y, y + self.hand_half_y)
        return ((fingers, z + self.finger_z[0], z + self.finger_z[1]),
                (hand, z + self.hand_z[0], z + self.hand_z[1]))


@dataclass(frozen=True)
class RewardShaping:
    """Dense reward: -goal_weight * d(object, goal) - reach_weight * excess d(gripper, object) + bonus on success.

    Why dense: real-world fine-tuning gets about 50 episodes (the paper's Fig. 7); a sparse
    success reward would give PPO almost no signal there.  The object-to-goal distance rewards
    every centimetre of progress; the reach term (only beyond reach_tolerance, i.e. once the
    gripper is not at the object) draws the gripper to the object before any push can happen;
    the per-step success bonus makes holding the object at the goal strictly better than any
    near miss.  IR failures are not in the reward: they are the cost signal the safety critic
    learns (the paper keeps reward and constraint separate).
    """

    goal_weight: float = 1.0        # per metre
    reach_weight: float = 0.5       # per metre beyond reach_tolerance
    reach_tolerance: float = 0.06   # m: object radius + fingertip + slack, i.e. "in pushing contact"
    success_bonus: float = 1.0      # per step at the goal (~ the penalty of 1 m of distance)


class TaskGeometry(Protocol):
    """What a task's geometry decides: the goal tolerance, start sampling and the IR-failure rule."""

    @property
    def success_radius(self) -> float: ...

    def ir_failure(self, objects: Objects, ee_position: np.ndarray) -> bool: ...

    def sample_start(self, rng: np.random.Generator) -> tuple[dict[str, np.ndarray], np.ndarray]: ...


def _position(objects: Objects, name: str) -> np.ndarray:
    if name not in objects:
        raise FarlError(f"the task needs the position of '{name}', but only {sorted(objects)} were reported "
                        "(check the perception config's object names)")
    return np.asarray(objects[name], dtype=float)


def _disc_gap_to_rect(centre_xy: np.ndarray, radius: float, rect: TableRect) -> float:
    """Gap between a disc and a rectangle in the table plane (negative = overlap)."""
    return rect.distance(centre_xy) - radius


def _gap(horizontal: float, vertical: float) -> float:
    """Distance between two upright solids from their horizontal and vertical gaps (either may be negative)."""
    if horizontal > 0.0 and vertical > 0.0:
        return float(np.hypot(horizontal, vertical))
    return max(horizontal, vertical)


@dataclass(frozen=True)
class FragilePushWallGeometry:
    """Fragile Push Wall numbers (see the module docstring)."""

    object_radius: float = 0.03
    object_height: float = 0.06
    wall: TableRect = TableRect(0.54, 0.56, -0.06, 0.22)
    wall_height: float = 0.08
    object_start: TableRect = TableRect(0.40, 0.44, 0.04, 0.12)
    goal_region: TableRect = TableRect(0.63, 0.66, 0.04, 0.12)
    success_radius: float = 0.04
    contact_margin: float = 0.005

    def wall_gap(self, object_position: np.ndarray) -> float:
        """Gap between the cup and the wall (metres; <= contact_margin is an IR failure)."""
        horizontal = _disc_gap_to_rect(object_position[:2], self.object_radius, self.wall)
        return _gap(horizontal, object_position[2] - self.object_height / 2.0 - self.wall_height)  # lifted over it

    def ir_failure(self, objects: Objects, ee_position: np.ndarray) -> bool:
        return self.wall_gap(_position(objects, "object")) <= self.contact_margin

    def sample_start(self, rng: np.random.Generator) -> tuple[dict[str, np.ndarray], np.ndarray]:
        xy = self.object_start.sample(rng)
        return {"object": np.array([xy[0], xy[1], self.object_height / 2.0])}, self.goal_region.sample(rng)


@dataclass(frozen=True)
class DisturbedPushGeometry:
    """Disturbed Push numbers (see the module docstring)."""

    object_radius: float = 0.03
    object_height: float = 0.04
    obstacle_radius: float = 0.035
    obstacle_height: float = 0.14
    object_start: TableRect = TableRect(0.40, 0.44, -0.18, -0.10)
    goal_region: TableRect = TableRect(0.60, 0.66, 0.08, 0.16)
    obstacle_region: TableRect = TableRect(0.46, 0.58, -0.08, 0.06)
    obstacle_goal_keepout: float = 0.11    # vase centre to goal: > puck + vase radii + success radius
    obstacle_start_keepout: float = 0.10   # vase centre to the puck (at the start; the human keeps it too)
    success_radius: float = 0.04
    contact_margin: float = 0.005
    gripper: GripperShape = GripperShape()

    def obstacle_gap(self, obstacle_xy: np.ndarray, object_position: np.ndarray, ee_position: np.ndarray) -> float:
        """Smallest gap from the vase to the puck or to the gripper (metres; <= contact_margin is an IR failure)."""
        obstacle_xy = np.asarray(obstacle_xy, dtype=float)[:2]
        gaps = [float(np.linalg.norm(object_position[:2] - obstacle_xy)) - self.object_radius - self.obstacle_radius]
        for footprint, z_bottom, _ in self.gripper.boxes(ee_position):
            horizontal = _disc_gap_to_rect(obstacle_xy, self.obstacle_radius, footprint)
            gaps.append(_gap(horizontal, z_bottom - self.obstacle_height))
        return min(gaps)

    def ir_failure(self, objects: Objects, ee_position: np.ndarray) -> bool:
        gap = self.obstacle_gap(_position(objects, "obstacle"), _position(objects, "object"), np.asarray(ee_position))
        return gap <= self.contact_margin

    def obstacle_allowed(self, obstacle_xy: np.ndarray, goal: np.ndarray, puck: np.ndarray) -> bool:
        """Where a human may put the vase: in its region, clear of the goal and of the puck."""
        return (self.obstacle_region.contains(obstacle_xy)
                and float(np.linalg.norm(obstacle_xy - goal[:2])) >= self.obstacle_goal_keepout
                and float(np.linalg.norm(obstacle_xy - puck[:2])) >= self.obstacle_start_keepout)

    def sample_obstacle(self, rng: np.random.Generator, goal: np.ndarray, puck: np.ndarray,
                        tries: int = 200) -> np.ndarray | None:
        """A vase position (3,) where obstacle_allowed holds, or None if rejection sampling finds none."""
        for _ in range(tries):
            xy = self.obstacle_region.sample(rng)
            if self.obstacle_allowed(xy, goal, puck):
                return np.array([xy[0], xy[1], self.obstacle_height / 2.0])
        return None

    def sample_start(self, rng: np.random.Generator) -> tuple[dict[str, np.ndarray], np.ndarray]:
        xy = self.object_start.sample(rng)
        puck = np.array([xy[0], xy[1], self.object_height / 2.0])
        goal = self.goal_region.sample(rng)
        obstacle = self.sample_obstacle(rng, goal, puck)
        if obstacle is None:
            raise FarlError("no vase position satisfies the Disturbed Push keepouts: the obstacle region is too "
                            "small for obstacle_goal_keepout / obstacle_start_keepout")
        return {"object": puck, "obstacle": obstacle}, goal


@dataclass(frozen=True)
class BoundedSoccerGeometry:
    """Bounded Soccer numbers (see the module docstring)."""

    ball_radius: float = 0.033
    ball_start: TableRect = TableRect(0.42, 0.46, -0.05, 0.05)
    goal_region: TableRect = TableRect(0.60, 0.64, -0.10, 0.10)
    success_radius: float = 0.06
    boundary: TableRect = TableRect(0.34, 0.75, -0.22, 0.22)

    def ir_failure(self, objects: Objects, ee_position: np.ndarray) -> bool:
        return not self.boundary.contains(_position(objects, "ball")[:2])

    def sample_start(self, rng: np.random.Generator) -> tuple[dict[str, np.ndarray], np.ndarray]:
        xy = self.ball_start.sample(rng)
        return {"ball": np.array([xy[0], xy[1], self.ball_radius])}, self.goal_region.sample(rng)


@dataclass(frozen=True)
class FrankaTask:
    """One real-robot task: its spec and the pure functions both the sim and the real robot score it with.

    `pushed` is the object that must reach the goal; `observed` the objects whose x/y enter the
    observation (in that order); `object_names` everything perception reports for this task
    (the wall is static: the cost uses the calibrated `geometry.wall`, not a detection of it).
    """

    name: str
    spec: TaskSpec
    pushed: str
    observed: tuple[str, ...]
    object_names: tuple[str, ...]
    geometry: TaskGeometry
    shaping: RewardShaping = field(default_factory=RewardShaping)

    def observation(self, ee_position: np.ndarray, gripper_width: float, objects: Objects,
                    goal: np.ndarray) -> np.ndarray:
        """The flat float32 observation in `spec.observation_names` order (SpecError on NaN/inf)."""
        parts = [np.asarray(ee_position, dtype=float)[:3], [float(gripper_width)]]
        parts += [_position(objects, name)[:2] for name in self.observed]
        parts.append(np.asarray(goal, dtype=float)[:2])
        return self.spec.check_observation(np.concatenate(parts))

    def cost(self, objects: Objects, ee_position: np.ndarray) -> float:
        """1.0 if the state is an IR failure, else 0.0 (decided geometrically from positions)."""
        return float(self.geometry.ir_failure(objects, np.asarray(ee_position, dtype=float)))

    def goal_distance(self, objects: Objects, goal: np.ndarray) -> float:
        return float(np.linalg.norm(_position(objects, self.pushed)[:2] - np.asarray(goal, dtype=float)[:2]))

    def success(self, objects: Objects, goal: np.ndarray) -> bool:
        return self.goal_distance(objects, goal) <= self.geometry.success_radius

    def reward(self, objects: Objects, ee_position: np.ndarray, goal: np.ndarray) -> float:
        """Dense shaped reward (see RewardShaping for why each term is there)."""
        shaping = self.shaping
        reach = np.linalg.norm(np.asarray(ee_position, dtype=float)[:3] - _position(objects, self.pushed)[:3])
        excess_reach = max(0.0, float(reach) - shaping.reach_tolerance)
        bonus = shaping.success_bonus if self.success(objects, goal) else 0.0
        return -shaping.goal_weight * self.goal_distance(objects, goal) - shaping.reach_weight * excess_reach + bonus

    def sample_start(self, rng: np.random.Generator) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Start positions of the movable objects (centres, (3,)) and a goal (2,), as the scene reset places them."""
        return self.geometry.sample_start(rng)


def _task(name: str, spec_name: str, pushed: str, observed: tuple[str, ...], static: tuple[str, ...],
          geometry: TaskGeometry, shaping: RewardShaping = RewardShaping()) -> FrankaTask:
    observation_names = (*ROBOT_OBSERVATION_NAMES, *(f"{obj}_{axis}" for obj in observed for axis in "xy"),
                         "goal_x", "goal_y")
    spec = TaskSpec(name=spec_name, observation_names=observation_names, action_names=ACTION_NAMES,
                    action_low=(-1.0,) * 4, action_high=(1.0,) * 4)
    return FrankaTask(name=name, spec=spec, pushed=pushed, observed=observed, object_names=(*observed, *static),
                      geometry=geometry, shaping=shaping)


FRANKA_TASKS: dict[str, FrankaTask] = {
    task.name: task for task in (
        _task("fragile-push-wall", "FrankaFragilePushWall", "object", ("object",), ("wall",),
              FragilePushWallGeometry()),
        _task("disturbed-push", "FrankaDisturbedPush", "object", ("object", "obstacle"), (),
              DisturbedPushGeometry()),
        # after a kick the ball rolls away from the gripper: a weaker reach term does not punish that
        _task("bounded-soccer", "FrankaBoundedSoccer", "ball", ("ball",), (), BoundedSoccerGeometry(),
              RewardShaping(reach_weight=0.2)),
    )
}


def get_franka_task(name: str) -> FrankaTask:
    """The task registered under `name`; a one-line FarlError lists the valid names."""
    try:
        return FRANKA_TASKS[name]
    except KeyError:
        raise FarlError(f"unknown Franka task '{name}'; choose one of: {', '.join(FRANKA_TASKS)}") from None
