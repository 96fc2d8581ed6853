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
            the wall, +y to the goal).  Disturbed Push: to the goal, through a via point beside the
            vase when the straight push passes near it.  Bounded Soccer: a slow push (half speed)
            to the goal so the ball does not roll out.
  failure   the guided failure: straight at the goal through the wall (the cup hits it), the
            gripper into the vase, a full-speed kick past the goal over the far boundary.
  recovery  from a near-failure state (the failure controller hands over when the object is
            `handover_gap` from failing): lift and back away, which leaves the scene as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from farl_core.errors import FarlError
from farl_core.franka_tasks import (
    BoundedSoccerGeometry,
    DisturbedPushGeometry,
    FragilePushWallGeometry,
    FrankaTask,
)

Controller = Callable[[np.ndarray], np.ndarray]
ROLES = ("task", "recovery", "failure")


@dataclass(frozen=True)
class PushSettings:
    """Heights and offsets of the pushing primitive (metres, base frame; EE point = between the fingertips)."""

    max_translation: float = 0.03   # the bridge's per-command cap: actions are deltas divided by it
    travel_z: float = 0.13          # fingertips 12 cm up: clear of the 8 cm wall and the 6 cm cup
    push_z: float = 0.03            # fingertips 2 cm above the table
    behind: float = 0.065           # EE to object centre when pushing (radius + closed fingers + slack)
    aligned: float = 0.015          # lateral error within which the gripper goes down and pushes
    lead: float = 0.03              # how far ahead of its contact point the pusher is driven


def _action(delta: np.ndarray, settings: PushSettings, speed: float = 1.0) -> np.ndarray:
    move = np.clip(np.asarray(delta, dtype=float) / settings.max_translation, -speed, speed)
    return np.array([*move, 1.0], dtype=np.float32)  # gripper closed: a compact pusher


def push_towards(ee: np.ndarray, obj: np.ndarray, waypoint: np.ndarray, settings: PushSettings,
                 speed: float = 1.0) -> np.ndarray:
    """One step of pushing the object at `obj` (x, y) towards `waypoint` (x, y) with the gripper at `ee` (x, y, z)."""
    direction = waypoint - obj
    distance = float(np.linalg.norm(direction))
    if distance < 1e-6:
        return _action(np.array([0.0, 0.0, settings.travel_z - ee[2]]), settings)
    d = direction / distance
    contact = obj - d * settings.behind
    offset = ee[:2] - contact
    lateral = abs(float(offset @ np.array([-d[1], d[0]])))
    along = float(offset @ d)
    in_line = lateral < settings.aligned and -0.03 < along < 0.03
    low = ee[2] < settings.push_z + 0.02
    if low and in_line:  # pushing: follow the object's line, a little ahead of the contact point
        target = contact + d * min(settings.lead, distance)
        return _action(np.array([*(target - ee[:2]), settings.push_z - ee[2]]), settings, speed)
    if low:  # off the line while down: lift before anything else (never drag the gripper through the object)
        return _action(np.array([0.0, 0.0, settings.travel_z - ee[2]]), settings)
    xy = contact - ee[:2]
    if float(np.linalg.norm(xy)) > settings.aligned:  # reposition at travel height
        return _action(np.array([*xy, settings.travel_z - ee[2]]), settings)
    return _action(np.array([*xy, settings.push_z - ee[2]]), settings)  # above the contact point: go down


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
    lane_y = wall.y_min - geometry.object_radius - 0.045   # the cup's centre passes the wall's free end here
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
    clearance = geometry.object_radius + geometry.obstacle_radius + 0.06

    def task_demo(obs: np.ndarray) -> np.ndarray:
        ee, puck, vase, goal = obs[:3], obs[4:6], obs[6:8], obs[8:10]
        line = goal - puck
        length = float(np.linalg.norm(line))
        if length > 1e-6:
            t = float(np.clip((vase - puck) @ line / length**2, 0.0, 1.0))
            closest = puck + t * line
            gap = float(np.linalg.norm(vase - closest))
            if gap < clearance and t < 1.0:  # the straight push passes the vase: go round it on its far side
                side = closest - vase if gap > 1e-6 else np.array([-line[1], line[0]]) / length
                via = vase + side / np.linalg.norm(side) * clearance
                if float(np.linalg.norm(via - puck)) > 0.02:
                    return push_towards(ee, puck, via, settings)
        return push_towards(ee, puck, goal, settings)

    def failure_demo(obs: np.ndarray) -> np.ndarray:
        ee, vase = obs[:3], obs[6:8]
        return _action(np.array([*(vase - ee[:2]), 0.06 - ee[2]]), settings)      # the gripper into the vase

    def recovery_demo(obs: np.ndarray) -> np.ndarray:
        return retreat(obs[:3], settings, obs[6:8])

    return {"task": task_demo, "failure": failure_demo, "recovery": recovery_demo}[role]


def _bounded_soccer(task: FrankaTask, role: str, settings: PushSettings) -> Controller:
    geometry = task.geometry
    assert isinstance(geometry, BoundedSoccerGeometry)
    soccer = PushSettings(**{**settings.__dict__, "behind": geometry.ball_radius + 0.035})

    def task_demo(obs: np.ndarray) -> np.ndarray:
        return push_towards(obs[:3], obs[4:6], obs[6:8], soccer, speed=0.5)

    def failure_demo(obs: np.ndarray) -> np.ndarray:
        ball, goal = obs[4:6], obs[6:8]
        beyond = goal + (goal - ball) / max(float(np.linalg.norm(goal - ball)), 1e-6) * 0.3
        return push_towards(obs[:3], ball, beyond, soccer, speed=1.0)             # a kick over the far boundary

    def recovery_demo(obs: np.ndarray) -> np.ndarray:
        return retreat(obs[:3], soccer, obs[4:6])

    return {"task": task_demo, "failure": failure_demo, "recovery": recovery_demo}[role]


_BUILDERS = {"fragile-push-wall": _fragile_wall, "disturbed-push": _disturbed_push, "bounded-soccer": _bounded_soccer}


def scripted_controller(task: FrankaTask, role: str, settings: PushSettings = PushSettings()) -> Controller:
    """The scripted `role` controller of Franka task `task` (module docstring)."""
    if role not in ROLES:
        raise FarlError(f"unknown demonstration role '{role}'; choose one of: {', '.join(ROLES)}")
    return _BUILDERS[task.name](task, role, settings)
