"""IR-failure rules: what C(s, a) = 1 means in each FailureBench task, read from the MuJoCo state.

A rule answers two questions about a MetaWorld env after a step: did an IR failure happen
(`is_failure`), and how far is the state from one (`margin`, metres, > 0 when safe).  The margin
is what near-failure starts are sampled on and what recovery demos are judged by.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Protocol

import mujoco
import numpy as np
from metaworld.sawyer_xyz_env import SawyerXYZEnv

from farl_sim.failurebench.geometry import GoalMouth, TableRect
from farl_sim.failurebench.vase import VASE_GEOM

_MAX_MARGIN = 0.5  # distances beyond this are reported as this (no failure anywhere near)


class FailureRule(Protocol):
    def is_failure(self, mw: SawyerXYZEnv) -> bool: ...

    def margin(self, mw: SawyerXYZEnv) -> float: ...


def object_position(mw: SawyerXYZEnv) -> np.ndarray:
    """Centre of the task object, as in the observation (obs[4:7])."""
    return np.asarray(mw._get_pos_objects()[:3], dtype=float)


def in_contact(mw: SawyerXYZEnv, mask_a: np.ndarray, mask_b: np.ndarray) -> bool:
    """True if an active contact pairs a geom flagged in `mask_a` with one flagged in `mask_b` (masks over geom ids)."""
    if mw.data.ncon == 0:
        return False
    pairs = mw.data.contact.geom[: mw.data.ncon]
    first, second = pairs[:, 0], pairs[:, 1]
    return bool(np.any((mask_a[first] & mask_b[second]) | (mask_a[second] & mask_b[first])))


def geom_distance(mw: SawyerXYZEnv, geoms_a: np.ndarray, geoms_b: np.ndarray) -> float:
    """Smallest signed distance between the two geom sets (negative when penetrating)."""
    return min((mujoco.mj_geomDistance(mw.model, mw.data, int(a), int(b), _MAX_MARGIN, None)
                for a in geoms_a for b in geoms_b), default=_MAX_MARGIN)


def body_geoms(model: mujoco.MjModel, body: str) -> np.ndarray:
    return np.flatnonzero(model.geom_bodyid == model.body(body).id)


def robot_geoms(model: mujoco.MjModel) -> np.ndarray:
    """Collidable geoms of the Sawyer arm and gripper (every body under the robot's root body)."""
    root = model.body_rootid[model.body("hand").id]
    collidable = (model.geom_contype != 0) | (model.geom_conaffinity != 0)
    return np.flatnonzero((model.body_rootid[model.geom_bodyid] == root) & collidable)


class BoundaryRule:
    """The object centre leaving `region` (except through the goal mouth, if any) is an IR failure."""

    def __init__(self, region: TableRect, goal_mouth: GoalMouth | None = None) -> None:
        self.region = region
        self.goal_mouth = goal_mouth

    def is_failure(self, mw: SawyerXYZEnv) -> bool:
        xy = object_position(mw)[:2]
        if self.region.contains(xy):
            return False
        return not (self.goal_mouth is not None and self.goal_mouth.contains(xy, np.asarray(mw._target_pos)[:2]))

    def margin(self, mw: SawyerXYZEnv) -> float:
        return self.region.inside_distance(object_position(mw)[:2])


class ContactRule:
    """Any contact between the `guarded` geoms and the `hazard` geoms is an IR failure."""

    def __init__(self, model: mujoco.MjModel, guarded: np.ndarray, hazard: np.ndarray) -> None:
        self.guarded = guarded
        self.hazard = hazard
        self._guarded_mask = np.isin(np.arange(model.ngeom), guarded)
        self._hazard_mask = np.isin(np.arange(model.ngeom), hazard)

    def is_failure(self, mw: SawyerXYZEnv) -> bool:
        return in_contact(mw, self._guarded_mask, self._hazard_mask)

    def margin(self, mw: SawyerXYZEnv) -> float:
        return geom_distance(mw, self.guarded, self.hazard)


def wall_rule(model: mujoco.MjModel) -> ContactRule:
    """Fragile Push Wall: the block touching any geom of the wall body."""
    return ContactRule(model, guarded=body_geoms(model, "obj"), hazard=body_geoms(model, "wall"))


def vase_rule(model: mujoco.MjModel) -> ContactRule:
    """Obstructed Push: the vase touching the robot or the puck (a fixed vase cannot topple, so any push counts)."""
    guarded = np.concatenate([robot_geoms(model), body_geoms(model, "obj")])
    return ContactRule(model, guarded=guarded, hazard=np.array([model.geom(VASE_GEOM).id]))


class SubstepWatch:
    """MetaWorld env mixin: apply the IR-failure rule after every physics substep of a step.

    One env step is 5 MuJoCo substeps (12.5 ms); a block that bounces off the wall inside one
    step would otherwise leave no contact behind by the time the step returns.  Only steps taken
    through `step_watched` are watched, so resets and hand placements cost nothing extra.
    """

    model: mujoco.MjModel
    data: mujoco.MjData
    failure_rule: FailureRule | None = None
    _watching: bool = False
    _seen: bool = False

    def step_watched(self, action: np.ndarray) -> tuple[tuple[Any, ...], bool]:
        """MetaWorld's step; returns its result and whether the rule fired in any substep."""
        self._watching, self._seen = True, False
        try:
            result = self.step(action)  # type: ignore[attr-defined]
        finally:
            self._watching = False
        return result, self._seen

    def _step_mujoco_simulation(self, ctrl: Any, n_frames: int) -> None:
        self.data.ctrl[:] = ctrl
        for _ in range(n_frames):
            mujoco.mj_step(self.model, self.data)
            if self._watching and self.failure_rule is not None and self.failure_rule.is_failure(self):  # type: ignore[arg-type]
                self._seen = True
        mujoco.mj_rnePostConstraint(self.model, self.data)  # as gymnasium's MujocoEnv does after stepping


@cache
def watched(cls: type[SawyerXYZEnv]) -> type[SawyerXYZEnv]:
    """`cls` with SubstepWatch mixed in (one class per MetaWorld env class)."""
    return type(f"Watched{cls.__name__}", (SubstepWatch, cls), {})
