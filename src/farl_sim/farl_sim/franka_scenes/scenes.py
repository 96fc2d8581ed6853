"""The paper's three real-robot tasks as MuJoCo scenes around franky-sim's FR3.

A FrankaScene is the simulated half of a farl_core.franka_tasks task: `build` is the scene
builder EmbeddedFrankaSim calls before the model compiles (it adds the task's objects, a goal
marker and the D435 camera to franky-sim's MJCF), and the other methods move and read objects in
the running simulation, always through `call_in_sim` so the 1 kHz physics never sees a
half-written state.  Geometry (sizes, start and goal regions, IR-failure rules) comes from the
task, so sim and real robot agree by construction; this module adds only what physics needs:

  masses and friction: the fragile cup 150 g, the puck 100 g, both sliding friction 0.5 (a
  plastic object on a wooden table); the ball 57 g (a tennis ball) with rolling friction 0.003 m,
  our stand-in for turf: measured in this scene, a ball set rolling at 0.3 / 0.4 / 0.5 / 0.6 m/s
  stops after 10 / 17 / 24 / 34 cm, so the 18 cm from start to goal centres take ~0.42 m/s and
  ~0.56 m/s already rolls the 31 cm to the far boundary: a narrow window, as on the paper's turf.
  (Object geoms carry priority 1, so their friction, not the ground plane's, applies.)
  The wall is static, the vase a mocap body (kinematic: the scripted human moves it, and the
  physics cannot push it); the goal marker and the soccer boundary are visual only (contype = 0,
  conaffinity = 0).
  colours: saturated and distinct so an HSV filter separates them from each other and from the
  blue checker floor: object red, wall yellow, vase magenta, ball orange, goal green, boundary white.

Object names are the perception names of the task ("object", "wall", "obstacle", "ball") and are
also the MJCF body names; positions are body origins, i.e. object centres.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

import mujoco
import numpy as np

from farl_core.errors import FarlError
from farl_core.franka_tasks import (
    BoundedSoccerGeometry,
    DisturbedPushGeometry,
    FragilePushWallGeometry,
    FrankaTask,
    TableRect,
    get_franka_task,
)
from farl_sim.franka_scenes.camera import DEFAULT_D435, D435Config, add_camera
from farl_sim.franka_scenes.human import DEFAULT_HUMAN_MOTION, HumanMotion, ScriptedHuman

if TYPE_CHECKING:
    from franky_sim.mujoco_simulator import MujocoSimulator

    from farl_control.embedded_sim import EmbeddedFrankaSim

GOAL_MARKER = "goal_marker"
GOAL_MARKER_HALF_HEIGHT = 0.001
"""A 2 mm disc on the table: visible to the camera, invisible to the physics."""

HAND_BODY = "robot0_hand"
EE_OFFSET = 0.1034
"""franky's end-effector point: 10.34 cm along the flange z axis (the Franka Hand's default F_T_EE);
franky-sim's hand body origin is the flange."""

RED = (0.90, 0.05, 0.05, 1.0)
YELLOW = (0.95, 0.85, 0.05, 1.0)
MAGENTA = (0.85, 0.05, 0.85, 1.0)
ORANGE = (1.00, 0.45, 0.00, 1.0)
GREEN = (0.05, 0.80, 0.10, 1.0)
WHITE = (1.00, 1.00, 1.00, 1.0)

BOUNDARY_HALF_WIDTH = 0.005
"""The soccer boundary is drawn as 1 cm wide white lines centred on the rectangle's edges."""


def _fmt(*values: float) -> str:
    return " ".join(f"{float(v):.6g}" for v in values)


def ee_position(model: mujoco.MjModel, data: mujoco.MjData) -> np.ndarray:
    """franky's end-effector point in the base frame, from the hand body (call inside call_in_sim)."""
    hand = data.body(HAND_BODY)
    return hand.xpos + hand.xmat.reshape(3, 3)[:, 2] * EE_OFFSET


def _free_body(worldbody: ET.Element, name: str, position: np.ndarray) -> ET.Element:
    body = ET.SubElement(worldbody, "body", name=name, pos=_fmt(*position))
    ET.SubElement(body, "freejoint", name=f"{name}_joint")
    return body


def _upright_cylinder(body: ET.Element, radius: float, height: float, rgba: tuple[float, ...], **physics: str) -> None:
    ET.SubElement(body, "geom", type="cylinder", size=_fmt(radius, height / 2.0), rgba=_fmt(*rgba), **physics)


def _visual_box(parent: ET.Element, centre: tuple[float, float, float], half: tuple[float, float, float],
                rgba: tuple[float, ...]) -> None:
    ET.SubElement(parent, "geom", type="box", pos=_fmt(*centre), size=_fmt(*half), rgba=_fmt(*rgba),
                  contype="0", conaffinity="0")


def _outline(parent: ET.Element, rect: TableRect, rgba: tuple[float, ...]) -> None:
    """Four thin visual strips along a rectangle's edges, flush with the table."""
    w, h = BOUNDARY_HALF_WIDTH, 0.001
    half_x, half_y = (rect.x_max - rect.x_min) / 2.0 + w, (rect.y_max - rect.y_min) / 2.0 + w
    centre = rect.centre
    for y in (rect.y_min, rect.y_max):
        _visual_box(parent, (centre[0], y, h), (half_x, w, h), rgba)
    for x in (rect.x_min, rect.x_max):
        _visual_box(parent, (x, centre[1], h), (w, half_y, h), rgba)


class FrankaScene(ABC):
    """A task's objects in franky-sim: build the MJCF, reset, place and read objects, (dis)turb the episode."""

    task_name: ClassVar[str]

    def __init__(self, camera: D435Config | None = DEFAULT_D435) -> None:
        self.task: FrankaTask = get_franka_task(self.task_name)
        self.camera = camera
        self._goal = self.task.geometry.goal_region.centre  # until the first reset

    # -- building (before the model compiles) ---------------------------------------------------

    def build(self, sim: MujocoSimulator) -> None:
        """The SceneBuilder: add objects, goal marker and camera to franky-sim's MJCF tree."""
        self._add_objects(sim.worldbody)
        marker = ET.SubElement(sim.worldbody, "body", name=GOAL_MARKER, mocap="true",
                               pos=_fmt(*self._goal, GOAL_MARKER_HALF_HEIGHT))
        ET.SubElement(marker, "geom", type="cylinder", size=_fmt(self.task.geometry.success_radius,
                                                                  GOAL_MARKER_HALF_HEIGHT),
                      rgba=_fmt(*GREEN), contype="0", conaffinity="0")
        if self.camera is not None:
            add_camera(sim.scene, self.camera)

    @abstractmethod
    def _add_objects(self, worldbody: ET.Element) -> None:
        """Add the task's bodies, at the centres of their start regions."""

    # -- the running simulation -----------------------------------------------------------------

    @property
    def goal(self) -> np.ndarray:
        """The current goal (x, y) in the base frame (set by reset)."""
        return self._goal.copy()

    @property
    def movable(self) -> tuple[str, ...]:
        """Objects `place` can move: the task's observed objects (the others, like the wall, are static)."""
        return self.task.observed

    def reset(self, sim: EmbeddedFrankaSim, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Sample a goal and start positions, place everything at rest, and return the object states.

        The robot is not moved: home it first (the bridge's reset), or an object may be placed
        into a low gripper.
        """
        starts, goal = self.task.sample_start(rng)
        self._goal = np.asarray(goal, dtype=float)
        placements = {name: (position, None) for name, position in starts.items()}
        placements[GOAL_MARKER] = (np.array([goal[0], goal[1], GOAL_MARKER_HALF_HEIGHT]), None)
        sim.call_in_sim(lambda m, d: _apply(m, d, placements))
        return self.object_states(sim)

    def place(self, sim: EmbeddedFrankaSim, name: str, position: np.ndarray,
              velocity: np.ndarray | None = None) -> None:
        """Put object `name`'s centre at `position` (upright), moving at linear `velocity` (default: at rest)."""
        if name not in self.movable:
            raise FarlError(f"cannot place '{name}' in task '{self.task.name}'; movable objects: "
                            f"{', '.join(self.movable)}")
        placement = {name: (np.asarray(position, dtype=float), velocity)}
        sim.call_in_sim(lambda m, d: _apply(m, d, placement))

    def object_states(self, sim: EmbeddedFrankaSim) -> dict[str, np.ndarray]:
        """Centre positions (3,) of the task's objects, all from one simulation instant."""
        names = self.task.object_names
        return sim.call_in_sim(lambda m, d: {name: d.body(name).xpos.copy() for name in names})

    def ee_position(self, sim: EmbeddedFrankaSim) -> np.ndarray:
        """The robot's end-effector point (what franky reports as the EE position) in the simulation."""
        return sim.call_in_sim(ee_position)

    def disturb(self, sim: EmbeddedFrankaSim, t: float, rng: np.random.Generator) -> None:
        """Change the scene during an episode at `t` seconds after reset (only Disturbed Push does)."""
        del sim, t, rng  # a static scene: nothing moves but the robot and what it pushes


def _apply(model: mujoco.MjModel, data: mujoco.MjData,
           placements: Mapping[str, tuple[np.ndarray, np.ndarray | None]]) -> None:
    """Set positions (and velocities) of free or mocap bodies, then recompute the derived state."""
    for name, (position, velocity) in placements.items():
        body = model.body(name)
        mocap = int(model.body_mocapid[body.id])
        if mocap >= 0:
            if velocity is not None and np.any(velocity):
                raise FarlError(f"'{name}' is moved kinematically and cannot be given a velocity")
            data.mocap_pos[mocap] = position
            continue
        joint = int(model.body_jntadr[body.id])
        if joint < 0 or model.jnt_type[joint] != mujoco.mjtJoint.mjJNT_FREE:
            raise FarlError(f"'{name}' has no free joint: it is static and cannot be placed")
        qpos, dof = int(model.jnt_qposadr[joint]), int(model.jnt_dofadr[joint])
        data.qpos[qpos:qpos + 3] = position
        data.qpos[qpos + 3:qpos + 7] = (1.0, 0.0, 0.0, 0.0)
        linear = np.zeros(3) if velocity is None else np.asarray(velocity, dtype=float)
        angular = np.zeros(3)
        geom = int(model.body_geomadr[body.id])
        if model.geom_type[geom] == mujoco.mjtGeom.mjGEOM_SPHERE:  # a ball starts rolling, not skidding
            angular = np.cross((0.0, 0.0, 1.0), linear) / model.geom_size[geom, 0]
        data.qvel[dof:dof + 3] = linear
        data.qvel[dof + 3:dof + 6] = angular
    mujoco.mj_forward(model, data)


class FragilePushWallScene(FrankaScene):
    """A red cup, a yellow wall between it and the goal."""

    task_name = "fragile-push-wall"
    CUP_PHYSICS: ClassVar[dict[str, str]] = {"mass": "0.15", "friction": "0.5 0.005 0.0001", "priority": "1"}

    def _add_objects(self, worldbody: ET.Element) -> None:
        geometry = self.task.geometry
        assert isinstance(geometry, FragilePushWallGeometry)
        start = geometry.object_start.centre
        cup = _free_body(worldbody, "object", np.array([start[0], start[1], geometry.object_height / 2.0]))
        _upright_cylinder(cup, geometry.object_radius, geometry.object_height, RED, **self.CUP_PHYSICS)
        wall = geometry.wall
        centre = wall.centre
        body = ET.SubElement(worldbody, "body", name="wall", pos=_fmt(centre[0], centre[1], geometry.wall_height / 2.0))
        ET.SubElement(body, "geom", type="box", rgba=_fmt(*YELLOW),
                      size=_fmt((wall.x_max - wall.x_min) / 2.0, (wall.y_max - wall.y_min) / 2.0,
                                geometry.wall_height / 2.0))


class DisturbedPushScene(FrankaScene):
    """A red puck, a magenta vase that a scripted human moves during the episode (see human.py)."""

    task_name = "disturbed-push"
    PUCK_PHYSICS: ClassVar[dict[str, str]] = {"mass": "0.10", "friction": "0.5 0.005 0.0001", "priority": "1"}

    def __init__(self, camera: D435Config | None = DEFAULT_D435, motion: HumanMotion = DEFAULT_HUMAN_MOTION) -> None:
        super().__init__(camera)
        geometry = self.task.geometry
        assert isinstance(geometry, DisturbedPushGeometry)
        self.geometry = geometry
        self.human = ScriptedHuman(geometry, motion)

    def _add_objects(self, worldbody: ET.Element) -> None:
        geometry = self.geometry
        start = geometry.object_start.centre
        puck = _free_body(worldbody, "object", np.array([start[0], start[1], geometry.object_height / 2.0]))
        _upright_cylinder(puck, geometry.object_radius, geometry.object_height, RED, **self.PUCK_PHYSICS)
        centre = geometry.obstacle_region.centre
        vase = ET.SubElement(worldbody, "body", name="obstacle", mocap="true",
                             pos=_fmt(centre[0], centre[1], geometry.obstacle_height / 2.0))
        _upright_cylinder(vase, geometry.obstacle_radius, geometry.obstacle_height, MAGENTA)

    def reset(self, sim: EmbeddedFrankaSim, rng: np.random.Generator) -> dict[str, np.ndarray]:
        states = super().reset(sim, rng)
        self.human.reset(rng)
        return states

    def disturb(self, sim: EmbeddedFrankaSim, t: float, rng: np.random.Generator) -> None:
        """Let the scripted human move the vase to where it is at time `t` (call at every control step)."""
        obstacle, puck, ee = sim.call_in_sim(
            lambda m, d: (d.body("obstacle").xpos.copy(), d.body("object").xpos.copy(), ee_position(m, d)))
        target = self.human.step(t, obstacle, puck, ee, self._goal, rng)
        if not np.array_equal(target, obstacle):
            self.place(sim, "obstacle", target)


class BoundedSoccerScene(FrankaScene):
    """An orange ball, a green goal area, a white boundary it must not roll over."""

    task_name = "bounded-soccer"
    BALL_PHYSICS: ClassVar[dict[str, str]] = {"mass": "0.057", "friction": "0.8 0.005 0.003", "condim": "6",
                                              "priority": "1"}

    def _add_objects(self, worldbody: ET.Element) -> None:
        geometry = self.task.geometry
        assert isinstance(geometry, BoundedSoccerGeometry)
        start = geometry.ball_start.centre
        ball = _free_body(worldbody, "ball", np.array([start[0], start[1], geometry.ball_radius]))
        ET.SubElement(ball, "geom", type="sphere", size=_fmt(geometry.ball_radius), rgba=_fmt(*ORANGE),
                      **self.BALL_PHYSICS)
        _outline(worldbody, geometry.boundary, WHITE)


FRANKA_SCENES: dict[str, type[FrankaScene]] = {
    scene.task_name: scene for scene in (FragilePushWallScene, DisturbedPushScene, BoundedSoccerScene)
}


def make_franka_scene(name: str, camera: D435Config | None = DEFAULT_D435) -> FrankaScene:
    """The scene of Franka task `name` (the keys of farl_core.franka_tasks.FRANKA_TASKS)."""
    try:
        scene_class = FRANKA_SCENES[name]
    except KeyError:
        raise FarlError(f"unknown Franka task '{name}'; choose one of: {', '.join(FRANKA_SCENES)}") from None
    return scene_class(camera=camera)
