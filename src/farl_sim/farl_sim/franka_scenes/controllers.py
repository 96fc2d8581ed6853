"""Scripted controllers for the three Franka tasks in the paper's three demonstration roles.

They stand in for the teleoperator of the paper's real-robot pipeline (section VI.C: task,
recovery and failure demonstrations), so that offline training data for the Franka tasks exists
without a human.  Each is a function of the task observation alone (end effector, gripper width,
object x/y, goal x/y: what perception and the bridge report), never of simulator internals, so it
runs through the robot loop with perception in the loop and the data is what the robot would see.
Actions are the task's (dx, dy, dz, gripper) in [-1, 1], scaled by the bridge's max_translation.

The primitive is one push: put the closed gripper behind the object on the line of the push
(lifted to `travel_z` while repositioning, so it never sweeps the object or the wall), lower it
to `push_z`, and drive the object towards a waypoint.
  task      Fragile Push Wall: round the wall's free end (three pushes: -y past the end, +x behind
            the wall, +y to the goal).  Disturbed Push: the first of three routes (straight, x then
            y, y then x, round the vase's far side) along which puck and hand stay clear of the vase
            where it stands now,
            replanned every tick; with none clear, wait above the scene for the human to move it.
            Bounded Soccer: a slow push (half speed) to the goal so the ball does not roll out.
  failure   the guided failure: straight at the goal through the wall (the cup hits it), the
            gripper into the vase, the ball dribbled on past the goal over the far boundary (slowly,
            so that its near-failure states can hand over to the recovery; a kick crosses the
            boundary between two ticks).
  recovery  from a near-failure state (the failure controller hands over when the object is
            `handover_gap` from failing): lift and back away, which leaves the scene as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from farl_core.errors import FarlError
from farl_core.franka_tasks import (
    BoundedSoccerGeometry,
    DisturbedPushGeometry,
    FragilePushWallGeometry,
    FrankaTask,
    GripperShape,
)

Controller = Callable[[np.ndarray], np.ndarray]
ROLES = ("task", "recovery", "failure")


@dataclass(frozen=True)
class PushSettings:
    """Heights and offsets of the pushing primitive (metres, base frame; EE point = between the fingertips)."""

    max_translation: float = 0.03   # the bridge's per-command cap: actions are deltas divided by it
    travel_z: float = 0.105         # fingertips 9.6 cm up: clear of the 8 cm wall and the 6 cm cup
    push_z: float = 0.03            # fingertips 2 cm above the table
    behind: float = 0.065           # EE to object centre before a push (radius + closed fingers + slack)
    aligned: float = 0.015          # lateral error within which the gripper goes down behind the object
    keep_line: float = 0.03         # lateral error a push tolerates (and steers out) before lifting to realign


def _action(delta: np.ndarray, settings: PushSettings, speed: float = 1.0) -> np.ndarray:
    move = np.clip(np.asarray(delta, dtype=float) / settings.max_translation, -speed, speed)
    return np.array([*move, 1.0], dtype=np.float32)  # gripper closed: a compact pusher


def push_towards(ee: np.ndarray, obj: np.ndarray, waypoint: np.ndarray, settings: PushSettings,
                 speed: float = 1.0) -> np.ndarray:
    """One step of pushing the object at `obj` (x, y) towards `waypoint` (x, y) with the gripper at `ee` (x, y, z).

    Down behind the object and on its line, the gripper drives along the line at `speed` times the
    bridge's cap and steers its lateral error out (the line is recomputed from the object every tick,
    so an object that slides sideways turns the push back towards the waypoint).  Off the line it
    lifts first (never dragging the fingers through the object), moves to the point `behind` the
    object at travel height and goes down there.
    """
    direction = waypoint - obj
    distance = float(np.linalg.norm(direction))
    if distance < 1e-6:
        return _action(np.zeros(3), settings)
    d = direction / distance
    normal = np.array([-d[1], d[0]])
    offset = ee[:2] - obj
    along, lateral = float(offset @ d), float(offset @ normal)
    low = ee[2] < settings.push_z + 0.02
    if low and abs(lateral) < settings.keep_line and along < -0.02:  # pushing
        step = d * min(settings.max_translation * speed, distance) - normal * lateral
        return _action(np.array([*step, settings.push_z - ee[2]]), settings, speed)
    if low:  # beside or ahead of the object while down: lift before anything else
        return _action(np.array([0.0, 0.0, settings.travel_z - ee[2]]), settings)
    xy = obj - d * settings.behind - ee[:2]
    if float(np.linalg.norm(xy)) > settings.aligned:  # reposition at travel height
        return _action(np.array([*xy, settings.travel_z - ee[2]]), settings)
    return _action(np.array([*xy, settings.push_z - ee[2]]), settings)  # above the start of the push: go down


def retreat(ee: np.ndarray, settings: PushSettings, towards: np.ndarray) -> np.ndarray:
    """Lift and back away from `towards` (x, y): the recovery demonstrations' motion."""
    away = ee[:2] - towards
    norm = float(np.linalg.norm(away))
    away = away / norm * 0.03 if norm > 1e-6 else np.zeros(2)
    return _action(np.array([*away, settings.travel_z - ee[2]]), settings)


def _fragile_wall(task: FrankaTask, role: str, settings: PushSettings) -> Controller:
    geometry = task.geometry
    assert isinstance(geometry, FragilePushWallGeometry)
    wall = geometry.wall
    # the cup passes the wall's free end on a lane far enough out that the hand (10.4 cm either side of the
    # fingers, its underside below the wall top while pushing) clears the wall end during the forward push
    lane_y = wall.y_min - GripperShape().hand_half_y - 0.006
    behind_x = wall.x_max + geometry.object_radius + 0.045

    def task_demo(obs: np.ndarray) -> np.ndarray:
        ee, cup, goal = obs[:3], obs[4:6], obs[6:8]
        if cup[0] < behind_x - 0.01 and cup[1] > lane_y + 0.01:
            return push_towards(ee, cup, np.array([cup[0], lane_y]), settings)      # sideways, past the free end
        if cup[0] < behind_x - 0.01:
            return push_towards(ee, cup, np.array([behind_x, lane_y]), settings)    # forward, behind the wall
        return push_towards(ee, cup, goal, settings)

    def failure_demo(obs: np.ndarray) -> np.ndarray:
        return push_towards(obs[:3], obs[4:6], obs[6:8], settings)                 # straight into the wall

    def recovery_demo(obs: np.ndarray) -> np.ndarray:
        return retreat(obs[:3], settings, np.array([wall.x_min, obs[5]]))

    return {"task": task_demo, "failure": failure_demo, "recovery": recovery_demo}[role]


def _disturbed_push(task: FrankaTask, role: str, settings: PushSettings) -> Controller:
    geometry = task.geometry
    assert isinstance(geometry, DisturbedPushGeometry)
    # travel with the fingertips (0.9 cm below the EE point) 5 cm above the 14 cm vase: action noise
    # while waiting there must not bring them down onto it
    settings = replace(settings, travel_z=geometry.obstacle_height + 0.06)
    margin = 0.01      # route clearance: perception noise (the human keeps the vase 3 cm from the gripper)
    contact = 0.045    # EE to puck centre while pushing

    def clear(puck: np.ndarray, route: list[np.ndarray], vase: np.ndarray) -> bool:
        """Whether pushing the puck along `route` keeps the puck and the hand `margin` clear of the vase now."""
        start = puck
        for waypoint in route:
            segment = waypoint - start
            length = float(np.linalg.norm(segment))
            if length < 1e-6:
                continue
            d = segment / length
            for t in np.linspace(0.0, length, max(2, int(length / 0.01) + 1)):
                q = start + d * t
                back = settings.behind if t == 0.0 else contact  # the descent behind the puck, then the push
                ee = np.array([*(q - d * back), settings.push_z])
                puck_at = np.array([q[0], q[1], geometry.object_height / 2.0])
                if geometry.obstacle_gap(vase, puck_at, ee) < margin:
                    return False
            start = waypoint
        return True

    def task_demo(obs: np.ndarray) -> np.ndarray:
        """The first clear route of: straight, x then y, y then x, round the vase's far side; else wait above."""
        ee, puck, vase, goal = obs[:3], obs[4:6], obs[6:8], obs[8:10]
        far_y = vase[1] + geometry.obstacle_radius + GripperShape().hand_half_y + 0.03  # the hand clears the vase
        routes = ([goal], [np.array([goal[0], puck[1]]), goal], [np.array([puck[0], goal[1]]), goal],
                  [np.array([puck[0], far_y]), np.array([goal[0], far_y]), goal])
        for route in routes:
            if clear(puck, route, vase):
                ahead = [w for w in route if float(np.linalg.norm(w - puck)) > 0.02] or [goal]
                return push_towards(ee, puck, ahead[0], settings)
        return _action(np.array([0.0, 0.0, settings.travel_z - ee[2]]), settings)

    def failure_demo(obs: np.ndarray) -> np.ndarray:
        ee, vase = obs[:3], obs[6:8]
        return _action(np.array([*(vase - ee[:2]), 0.06 - ee[2]]), settings)      # the gripper into the vase

    def recovery_demo(obs: np.ndarray) -> np.ndarray:
        return retreat(obs[:3], settings, obs[6:8])

    return {"task": task_demo, "failure": failure_demo, "recovery": recovery_demo}[role]


def _bounded_soccer(task: FrankaTask, role: str, settings: PushSettings) -> Controller:
    geometry = task.geometry
    assert isinstance(geometry, BoundedSoccerGeometry)
    soccer = replace(settings, behind=geometry.ball_radius + 0.035)

    def task_demo(obs: np.ndarray) -> np.ndarray:
        return push_towards(obs[:3], obs[4:6], obs[6:8], soccer, speed=0.5)

    def failure_demo(obs: np.ndarray) -> np.ndarray:
        beyond = np.array([geometry.boundary.x_max + 0.1, obs[7]])                 # through the goal area and on
        return push_towards(obs[:3], obs[4:6], beyond, soccer, speed=0.5)        # over the far boundary

    def recovery_demo(obs: np.ndarray) -> np.ndarray:
        return retreat(obs[:3], soccer, obs[4:6])

    return {"task": task_demo, "failure": failure_demo, "recovery": recovery_demo}[role]


_BUILDERS = {"fragile-push-wall": _fragile_wall, "disturbed-push": _disturbed_push, "bounded-soccer": _bounded_soccer}


def failure_margin(task: FrankaTask, obs: np.ndarray) -> float:
    """How far (metres) the state of observation `obs` is from the task's IR failure, from the observation alone.

    Fragile Push Wall: the cup's gap to the wall; Disturbed Push: the gap from the vase to the puck or the
    gripper; Bounded Soccer: the ball centre's distance inside the boundary.  The recovery recorder hands
    over from the failure controller when this drops below its handover gap: a near-failure state.
    """
    geometry = task.geometry
    ee = obs[:3]
    if isinstance(geometry, FragilePushWallGeometry):
        return geometry.wall_gap(np.array([obs[4], obs[5], geometry.object_height / 2.0])) - geometry.contact_margin
    if isinstance(geometry, DisturbedPushGeometry):
        puck = np.array([obs[4], obs[5], geometry.object_height / 2.0])
        return geometry.obstacle_gap(obs[6:8], puck, ee) - geometry.contact_margin
    assert isinstance(geometry, BoundedSoccerGeometry)
    return geometry.boundary.inside_distance(obs[4:6])


def scripted_controller(task: FrankaTask, role: str, settings: PushSettings = PushSettings()) -> Controller:
    """The scripted `role` controller of Franka task `task` (module docstring)."""
    if role not in ROLES:
        raise FarlError(f"unknown demonstration role '{role}'; choose one of: {', '.join(ROLES)}")
    return _BUILDERS[task.name](task, role, settings)


class DemoScript:
    """Which scripted controller acts on each tick of a demonstration of `role` (the roles of the module docstring).

      task      the task controller throughout;
      failure   the task controller for U[0, guide_within) ticks (so failures start from states the task
                distribution visits), then the failure controller into the failure;
      recovery  the failure controller until the state is within `handover_gap` of the failure (the
                unrecorded approach to a near-failure state), then the recovery controller: `handed_over`.
    Shared by the scripted recorder (`farl demos`) and scripted teleoperation (`farl teleop --device scripted`).
    """

    def __init__(self, task: FrankaTask, role: str, handover_gap: float = 0.03, guide_within: int = 40) -> None:
        if role not in ROLES:
            raise FarlError(f"unknown demonstration role '{role}'; choose one of: {', '.join(ROLES)}")
        self.task, self.role = task, role
        self.handover_gap, self.guide_within = handover_gap, guide_within
        self.controllers = {r: scripted_controller(task, r) for r in ROLES}
        self.handed_over = False
        self._ticks = self._guide_at = 0

    def begin(self, rng: np.random.Generator) -> None:
        self._ticks, self.handed_over = 0, False
        self._guide_at = int(rng.integers(0, self.guide_within))

    def role_now(self, observation: np.ndarray) -> str:
        """The controller acting on this tick (call once per tick)."""
        self._ticks += 1
        if self.role == "failure":
            return "task" if self._ticks <= self._guide_at else "failure"
        if self.role == "recovery":
            if not self.handed_over and failure_margin(self.task, observation) < self.handover_gap:
                self.handed_over = True
            return "recovery" if self.handed_over else "failure"
        return "task"

    def action(self, observation: np.ndarray) -> np.ndarray:
        return self.controllers[self.role_now(observation)](observation)
