"""The paper's real-robot tasks as MuJoCo scenes for franky-sim, with a simulated RealSense D435.

    scene = make_franka_scene("disturbed-push")
    with EmbeddedFrankaSim(scene=scene.build) as sim:
        scene.reset(sim, rng)
        with SimulatedD435(sim, scene.camera) as camera:
            frame = camera.capture()
"""

from farl_sim.franka_scenes.camera import (
    CameraExtrinsics,
    D435Config,
    D435Intrinsics,
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
    "FRANKA_SCENES", "BoundedSoccerScene", "CameraExtrinsics", "D435Config", "D435Intrinsics", "DisturbedPushScene",
    "FragilePushWallScene", "FrankaScene", "HumanMotion", "RGBDFrame", "ScriptedHuman", "SimulatedD435",
    "add_camera", "make_franka_scene",
]
