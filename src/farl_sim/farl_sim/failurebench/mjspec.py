"""Compiling an edited MetaWorld model (MjSpec) the way MetaWorld compiles its own."""

from __future__ import annotations

import mujoco
from metaworld.sawyer_xyz_env import SawyerXYZEnv


def compile_for(env: SawyerXYZEnv, spec: mujoco.MjSpec) -> tuple[mujoco.MjModel, mujoco.MjData]:
    """Model and data for `env._initialize_simulation`, with an offscreen buffer as large as its renderer."""
    model = spec.compile()
    model.vis.global_.offwidth = max(model.vis.global_.offwidth, env.width)
    model.vis.global_.offheight = max(model.vis.global_.offheight, env.height)
    return model, mujoco.MjData(model)
