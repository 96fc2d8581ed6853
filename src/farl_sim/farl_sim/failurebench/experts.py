"""Scripted controllers for FailureBench: the task expert (normalised return 100) and the recovery script.

expert_action: MetaWorld's own scripted policies for push, soccer and push-wall (they reach the
  goal without an IR failure on most seeds, see the tests), and for Obstructed Push a detour
  expert: grasp the puck like MetaWorld's push policy, drag it to the side of the vase the puck
  is already on (12 cm off the vase-goal line, from 6 cm before the vase to 6 cm past it), then
  to the goal.  It reads everything from the observation (the vase sits in obs[11:14]).
recovery_action: grasp the object and carry it to a safe point, from wherever hand and object
  are: rise first if the hand is low and not over the object, fly over it 10 cm up, descend
  with the fingers open, close, carry.  Safe points: the region centre (Bounded Push and
  Soccer; the ball never stops rolling, so it is caught rather than kicked back), 10 cm off the
  nearest wall point (Fragile Push Wall), 14 cm from the vase on the object's side (Obstructed Push).
failure_action: the "guided failure" of the paper's failure demos (VI.C: the operator guides the
  robot into failure states): grasp the object and drag it to 5 cm past the nearest boundary
  edge, into the wall's free end, or 5 cm past the vase centre (a held object stops short of a
  plain target).
All three are functions of the observation only (the env just names the task), so they can be
queried on any state, e.g. with action noise added, and stay reproducible.
"""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
from metaworld.policies import SawyerPushV3Policy, SawyerPushWallV3Policy, SawyerSoccerV3Policy
from metaworld.policies.policy import Policy

from farl_sim.failurebench.env import FailureBenchEnv
from farl_sim.failurebench.geometry import BOUNDED_PUSH_REGION, BOUNDED_SOCCER_REGION, WALL_RECT, TableRect

_METAWORLD_EXPERTS: dict[str, Policy] = {
    "bounded-push": SawyerPushV3Policy(),
    "bounded-soccer": SawyerSoccerV3Policy(),
    "fragile-push-wall": SawyerPushWallV3Policy(),
}

_REACH_GAIN = 25.0            # MetaWorld's soccer gain: full speed (1 cm/step) until 4 cm from a waypoint
_DRAG_GAIN = 10.0             # MetaWorld's push gain, gentler with a 0.75 kg puck in the fingers
_GRIP = 0.6                   # MetaWorld's push grip effort
_BALL_GRIP = 1.0              # the ball is light and round: squeeze harder
_OPEN = 0.9                   # obs[3] (finger distance / 0.1 m) above this: the fingers have not started closing
_CLOSING = 0.01               # obs[3] fell by more than this since the previous frame (obs[21]): still closing
_EXPERT_CLEARANCE = 0.2       # approach height above the object (MetaWorld's push policy)
_RECOVERY_CLEARANCE = 0.10    # fingertips clear the puck, the block and the ball
_DETOUR_LATERAL = 0.12        # distance of the detour path from the vase-goal line
_DETOUR_ALONG = 0.06          # detour starts/ends this far before/after the vase
_WALL_RETREAT = 0.10
_OVERSHOOT = 0.05             # failure_action's target beyond the boundary or hazard
_VASE_RETREAT = 0.14


def _base(env: gym.Env) -> FailureBenchEnv:
    base = env.unwrapped
    if not isinstance(base, FailureBenchEnv):
        raise TypeError(f"expected a FailureBench env, got {type(base).__name__}")
    return base


def expert_action(env: gym.Env, obs: np.ndarray) -> np.ndarray:
    """The scripted task expert's action for `obs`, clipped to the action space."""
    name = _base(env).task.name
    if name == "obstructed-push":
        action = _carry(obs, _detour_waypoint(obs), _EXPERT_CLEARANCE, _GRIP)
    else:
        with warnings.catch_warnings():  # MetaWorld warns whenever its gains saturate; the env clips anyway
            warnings.filterwarnings("ignore", message="Constant")
            action = _METAWORLD_EXPERTS[name].get_action(np.asarray(obs, dtype=np.float64))
    return np.clip(action, -1.0, 1.0).astype(np.float32)


def noisy_expert_action(env: gym.Env, obs: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    """The expert with Gaussian action noise of `std`: a medium-expert demonstrator."""
    return np.clip(expert_action(env, obs) + std * rng.standard_normal(4), -1.0, 1.0).astype(np.float32)


def recovery_action(env: gym.Env, obs: np.ndarray) -> np.ndarray:
    """The scripted recovery action: take the object away from the failure region (module docstring)."""
    name = _base(env).task.name
    obj = np.asarray(obs[4:6], dtype=float)
    if name == "bounded-push":
        return _carry(obs, BOUNDED_PUSH_REGION.centre, _RECOVERY_CLEARANCE, _GRIP)
    if name == "bounded-soccer":
        return _carry(obs, BOUNDED_SOCCER_REGION.centre, _RECOVERY_CLEARANCE, _BALL_GRIP)
    if name == "fragile-push-wall":
        nearest = WALL_RECT.closest_point(obj)
        return _carry(obs, nearest + _WALL_RETREAT * _unit(obj - nearest, np.array([0.0, -1.0])),
                      _RECOVERY_CLEARANCE, _GRIP)
    vase = np.asarray(obs[11:13], dtype=float)
    return _carry(obs, vase + _VASE_RETREAT * _unit(obj - vase, np.array([0.0, -1.0])), _RECOVERY_CLEARANCE, _GRIP)


def failure_action(env: gym.Env, obs: np.ndarray) -> np.ndarray:
    """Drag the object into the task's failure region (module docstring): one way to fail per state."""
    name = _base(env).task.name
    obj = np.asarray(obs[4:6], dtype=float)
    if name in ("bounded-push", "bounded-soccer"):
        region = BOUNDED_PUSH_REGION if name == "bounded-push" else BOUNDED_SOCCER_REGION
        return _carry(obs, _beyond_nearest_side(region, obj), _RECOVERY_CLEARANCE,
                      _GRIP if name == "bounded-push" else _BALL_GRIP)
    if name == "fragile-push-wall":
        return _carry(obs, _into_wall_end(obj), _RECOVERY_CLEARANCE, _GRIP)
    vase = np.asarray(obs[11:13], dtype=float)
    return _carry(obs, vase + _OVERSHOOT * _unit(vase - obj, np.array([0.0, 1.0])), _RECOVERY_CLEARANCE, _GRIP)


def _into_wall_end(obj: np.ndarray) -> np.ndarray:
    """Beside the wall's free (left) end, then sideways into it.

    The Sawyer's fingers close along y, so a finger shields the block's faces towards and away from
    the robot: dragged straight at the wall's long face, the finger stops 1 cm short (measured).
    The block's side faces are bare, so it is driven into the wall's end face along x.
    """
    end = np.array([WALL_RECT.x_min, WALL_RECT.centre[1]])
    if abs(obj[1] - end[1]) > 0.015:
        return end - np.array([_OVERSHOOT, 0.0])
    return end + np.array([_OVERSHOOT, 0.0])


def _beyond_nearest_side(region: TableRect, xy: np.ndarray) -> np.ndarray:
    """_OVERSHOOT outside the nearest of the region's left, right and near (robot-side) edges.

    The far edge is left out: in Bounded Soccer the goal mouth interrupts it.
    """
    left, right, near = xy[0] - region.x_min, region.x_max - xy[0], xy[1] - region.y_min
    if near <= min(left, right):
        return np.array([xy[0], region.y_min - _OVERSHOOT])
    return np.array([region.x_min - _OVERSHOOT if left < right else region.x_max + _OVERSHOOT, xy[1]])


def _unit(vector: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 1e-9 else fallback


def _carry(obs: np.ndarray, target_xy: np.ndarray, clearance: float, grip: float) -> np.ndarray:
    """Grasp the object (obs[4:7]) with the hand (obs[0:3]) and drag it on the table to `target_xy`."""
    hand, obj = np.asarray(obs[:3], dtype=float), np.asarray(obs[4:7], dtype=float)
    height = hand[2] - obj[2]
    gain, effort = _REACH_GAIN, -1.0
    if np.linalg.norm(hand[:2] - obj[:2]) > 0.02:   # not over the object: rise (if low), then fly over it
        above = obj[2] + clearance
        desired = np.array([hand[0], hand[1], above]) if height < clearance / 2 else np.array([obj[0], obj[1], above])
    elif height > 0.04:                              # over it: descend with the fingers open
        desired = obj + np.array([0.0, 0.0, 0.03])
    elif obs[3] > _OPEN or obs[3] < obs[21] - _CLOSING:  # fingers around it, still closing: wait
        desired, effort = hand, grip
    else:                                            # holding it: drag
        desired, gain, effort = np.array([target_xy[0], target_xy[1], obj[2] + 0.03]), _DRAG_GAIN, grip
    return np.append(np.clip(gain * (desired - hand), -1.0, 1.0), effort).astype(np.float32)


def _detour_waypoint(obs: np.ndarray) -> np.ndarray:
    """Where the Obstructed Push expert drags the puck next: beside the vase, past it, then the goal."""
    puck, vase, goal = (np.asarray(obs[s], dtype=float) for s in (slice(4, 6), slice(11, 13), slice(36, 38)))
    along = _unit(goal - vase, np.array([0.0, 1.0]))
    normal = np.array([-along[1], along[0]])
    t, lateral = float((puck - vase) @ along), float((puck - vase) @ normal)
    side = 1.0 if lateral >= 0.0 else -1.0
    if t < _DETOUR_ALONG and abs(lateral) < _DETOUR_LATERAL - 0.015:   # not beside the vase yet: get there
        return vase + max(t, -_DETOUR_ALONG) * along + side * _DETOUR_LATERAL * normal
    if t < _DETOUR_ALONG:                                                # beside it: pass it
        return vase + _DETOUR_ALONG * along + side * _DETOUR_LATERAL * normal
    return goal
