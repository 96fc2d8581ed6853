"""The paper's real-robot tasks as MuJoCo scenes for franky-sim, with a simulated RealSense D435.

    scene = make_franka_scene("disturbed-push")
    with EmbeddedFrankaSim(scene=scene.build) as sim:
        scene.reset(sim, rng)
        with SimulatedD435(sim, scene.camera) as camera:
            frame = camera.capture()

Importing it registers the gymnasium ids FrankaSim/FragilePushWall-v0, FrankaSim/DisturbedPush-v0
and FrankaSim/BoundedSoccer-v0 (env.py: the bridge + scene env, one franky-sim server each).
"""

import gymnasium as gym

from farl_sim.franka_scenes.camera import (
    CameraExtrinsics,
    CameraIntrinsics,
    D435Config,
    RGBDFrame,
    SimulatedD435,
    add_camera,
)
from farl_sim.franka_scenes.human import HumanMotion, ScriptedHuman
from farl_sim.franka_scenes.scenes import (
    FRANKA_SCENES,
    BoundedSoccerScene,
    DisturbedPushScene,
    FragilePushWallScene,
    FrankaScene,
    make_franka_scene,
)

__all__ = [
    "FRANKA_SCENES", "BoundedSoccerScene", "CameraExtrinsics", "D435Config", "CameraIntrinsics", "DisturbedPushScene",
    "FragilePushWallScene", "FrankaScene", "HumanMotion", "RGBDFrame", "ScriptedHuman", "SimulatedD435",
    "GYM_IDS", "add_camera", "make_franka_scene",
]

GYM_IDS = {"fragile-push-wall": "FrankaSim/FragilePushWall-v0", "disturbed-push": "FrankaSim/DisturbedPush-v0",
            "bounded-soccer": "FrankaSim/BoundedSoccer-v0"}
for _task, _gym_id in GYM_IDS.items():
    if _gym_id not in gym.registry:
        gym.register(id=_gym_id, entry_point="farl_sim.franka_scenes.env:FrankaSimEnv", kwargs={"task": _task})
