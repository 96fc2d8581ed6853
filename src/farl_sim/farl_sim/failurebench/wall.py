"""MetaWorld push-wall-v3 with a longer wall: the model behind Fragile Push Wall.

MetaWorld's wall ends at x = -0.02, and its scripted expert carries the block around the left
end with 3-5 cm to spare, so even a noisy policy almost never touches it (0 of 30 episodes at
action noise 0.3).  Moving the left end to WALL_RECT.x_min narrows the passage the way the
paper's real setup does (the object must pass close to the wall to reach a target just behind
it).  Edited with MjSpec on MetaWorld's own XML, like the Obstructed Push vase, so asset paths
keep resolving and nothing is written to disk.
"""

from __future__ import annotations

import mujoco
from metaworld.envs.sawyer_push_wall_v3 import SawyerPushWallEnvV3

from farl_sim.failurebench.geometry import WALL_CENTRE, WALL_HALF_SIZE
from farl_sim.failurebench.mjspec import compile_for

WALL_BODY = "wall"


class SawyerFragilePushWallEnvV3(SawyerPushWallEnvV3):
    """push-wall-v3 whose wall footprint is geometry.WALL_RECT (both its visual and collision box)."""

    def _initialize_simulation(self) -> tuple[mujoco.MjModel, mujoco.MjData]:
        spec = mujoco.MjSpec.from_file(self.fullpath)
        wall = spec.body(WALL_BODY)
        wall.pos = [WALL_CENTRE[0], WALL_CENTRE[1], wall.pos[2]]
        for geom in wall.geoms:
            geom.size = [WALL_HALF_SIZE[0], WALL_HALF_SIZE[1], geom.size[2]]
        return compile_for(self, spec)
