"""MetaWorld push-v3 with a vase on the push path: the model behind Obstructed Push.

The vase is added with MuJoCo's MjSpec API on top of MetaWorld's own push XML, so every asset
path keeps resolving inside the installed metaworld package and nothing is written to disk.
It is a static body (no joint): the episode ends on the first touch, so a toppling vase would
never be seen; a fixed one keeps contacts exact and the reset deterministic.  Its position is
moved per reset through `model.body_pos` (the same way MetaWorld moves the soccer goal).

Collision bits: contype 1 / conaffinity 5 make the vase collide with the puck and the gripper
(contype 1) and with the Sawyer wrist link `right_l6` (contype 4); the upper arm links have no
collision geoms in MetaWorld, so they pass through anything.
"""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np
import numpy.typing as npt
from metaworld.envs.sawyer_push_v3 import SawyerPushEnvV3

from farl_sim.failurebench.geometry import VASE
from farl_sim.failurebench.mjspec import compile_for

VASE_BODY = "vase"
VASE_GEOM = "vase_geom"
_IDENTITY_QUAT_XYZW = np.array([0.0, 0.0, 0.0, 1.0])  # MetaWorld's object quaternions are scipy (x, y, z, w)


class SawyerObstructedPushEnvV3(SawyerPushEnvV3):
    """push-v3 whose observation carries the vase in the second-object slot (obs[11:18])."""

    def _initialize_simulation(self) -> tuple[mujoco.MjModel, mujoco.MjData]:
        spec = mujoco.MjSpec.from_file(self.fullpath)
        body = spec.worldbody.add_body(name=VASE_BODY, pos=[0.0, 0.75, VASE.half_height])
        body.add_geom(name=VASE_GEOM, type=mujoco.mjtGeom.mjGEOM_CYLINDER,
                      size=[VASE.radius, VASE.half_height, 0.0], contype=1, conaffinity=5,
                      rgba=[0.25, 0.45, 0.85, 1.0])
        return compile_for(self, spec)

    @property
    def vase_position(self) -> npt.NDArray[np.float64]:
        return self.data.body(VASE_BODY).xpos.copy()

    def _get_state_rand_vec(self) -> npt.NDArray[np.float64]:
        """MetaWorld's puck/goal sample, redrawn until the two are far enough apart for the detour."""
        vec = super()._get_state_rand_vec()
        while np.linalg.norm(vec[:2] - vec[3:5]) < VASE.min_puck_goal_distance:
            vec = super()._get_state_rand_vec()
        return vec

    def reset_model(self) -> npt.NDArray[np.float64]:
        super().reset_model()
        assert self.obj_init_pos is not None and self._target_pos is not None
        start, goal = self.obj_init_pos[:2], self._target_pos[:2]
        along = (goal - start) / np.linalg.norm(goal - start)
        normal = np.array([-along[1], along[0]])
        offset = self.np_random.uniform(-VASE.max_lateral_offset, VASE.max_lateral_offset)
        self.place_vase((start + goal) / 2.0 + offset * normal)
        return self._get_obs()

    def place_vase(self, xy: npt.NDArray[np.float64]) -> None:
        """Stand the vase at table position `xy` (it is static: this moves the body in the model)."""
        self.model.body(VASE_BODY).pos[:] = [xy[0], xy[1], VASE.half_height]
        mujoco.mj_forward(self.model, self.data)

    def _get_pos_objects(self) -> npt.NDArray[Any]:
        return np.hstack((super()._get_pos_objects(), self.vase_position))

    def _get_quat_objects(self) -> npt.NDArray[Any]:
        return np.hstack((super()._get_quat_objects(), _IDENTITY_QUAT_XYZW))
