"""The Franka task scenes in a running franky-sim, and the simulated D435 (needs MUJOCO_GL=egl to render).

One simulator per scene, shared by that scene's tests (franky-sim holds fixed loopback ports, so
the scenes run one after another: pytest finishes one parameter of the module fixture before
starting the next).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import mujoco
import numpy as np
import pytest

from farl_control.embedded_sim import EmbeddedFrankaSim
from farl_core.errors import FarlError
from farl_core.franka_tasks import BoundedSoccerGeometry, DisturbedPushGeometry, FragilePushWallGeometry
from farl_sim.franka_scenes import (
    CameraExtrinsics,
    CameraIntrinsics,
    D435Config,
    DisturbedPushScene,
    FrankaScene,
    SimulatedD435,
    add_camera,
    make_franka_scene,
)

T = TypeVar("T")
SCENES = ("fragile-push-wall", "disturbed-push", "bounded-soccer")
CONTROL_PERIOD = 0.2  # s: the paper's 5 Hz


@dataclasses.dataclass
class Running:
    scene: FrankaScene
    sim: EmbeddedFrankaSim
    camera: SimulatedD435


@pytest.fixture(scope="module", params=SCENES)
def running(request: pytest.FixtureRequest) -> Iterator[Running]:
    scene = make_franka_scene(request.param)
    with EmbeddedFrankaSim(scene=scene.build, realtime=True) as sim:
        with SimulatedD435(sim, scene.camera) as camera:
            yield Running(scene, sim, camera)


def in_scene(name: str) -> pytest.MarkDecorator:
    """Run a test in one scene only (it shares that scene's simulator with the other tests)."""
    return pytest.mark.parametrize("running", [name], indirect=True)


def test_scene_compiles_with_the_fr3(running: Running) -> None:
    model = running.sim.model
    names = {model.body(i).name for i in range(model.nbody)}
    assert {"robot0_hand", "goal_marker", *running.scene.task.object_names} <= names
    assert mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, "d435") >= 0
    np.testing.assert_allclose(running.scene.ee_position(running.sim), [0.554, 0.0, 0.521], atol=0.01)


def test_nominal_start_is_at_rest_and_not_a_failure(running: Running) -> None:
    scene, sim = running.scene, running.sim
    for seed in range(3):
        starts = scene.reset(sim, np.random.default_rng(seed))
        assert scene.task.geometry.goal_region.contains(scene.goal)
        settled = scene.object_states(sim)
        for name, position in starts.items():
            np.testing.assert_allclose(settled[name], position, atol=2e-3)
        assert scene.task.cost(settled, scene.ee_position(sim)) == 0.0
        assert not scene.task.success(settled, scene.goal)
        obs = scene.task.observation(scene.ee_position(sim), 0.04, settled, scene.goal)
        assert obs.shape == (scene.task.spec.obs_dim,)
        marker = sim.call_in_sim(lambda m, d: d.body("goal_marker").xpos.copy())
        np.testing.assert_allclose(marker[:2], scene.goal)


def _failure_after_place(running: Running, name: str, position: np.ndarray) -> float:
    running.scene.place(running.sim, name, position)
    states = running.scene.object_states(running.sim)
    np.testing.assert_allclose(states[name], position, atol=2e-3)  # placed, and not thrown away by a contact
    return running.scene.task.cost(states, running.scene.ee_position(running.sim))


@in_scene("fragile-push-wall")
def test_wall_contact_is_an_ir_failure(running: Running) -> None:
    running.scene.reset(running.sim, np.random.default_rng(0))
    geometry = running.scene.task.geometry
    assert isinstance(geometry, FragilePushWallGeometry)
    x_touch = geometry.wall.x_min - geometry.object_radius
    y, z = float(geometry.wall.centre[1]), geometry.object_height / 2.0
    assert _failure_after_place(running, "object", np.array([x_touch, y, z])) == 1.0
    assert _failure_after_place(running, "object", np.array([x_touch - 0.02, y, z])) == 0.0


@in_scene("bounded-soccer")
def test_leaving_the_boundary_is_an_ir_failure(running: Running) -> None:
    running.scene.reset(running.sim, np.random.default_rng(0))
    geometry = running.scene.task.geometry
    assert isinstance(geometry, BoundedSoccerGeometry)
    z = geometry.ball_radius
    assert _failure_after_place(running, "ball", np.array([geometry.boundary.x_max + 0.01, 0.0, z])) == 1.0
    assert _failure_after_place(running, "ball", np.array([geometry.boundary.x_max - 0.02, 0.0, z])) == 0.0


@in_scene("bounded-soccer")
def test_kicked_ball_rolls_and_stops(running: Running) -> None:
    scene, sim = running.scene, running.sim
    scene.place(sim, "ball", np.array([0.45, 0.0, 0.033]), velocity=np.array([0.3, 0.0, 0.0]))
    start = sim.call_in_sim(lambda m, d: d.time)
    while sim.call_in_sim(lambda m, d: d.time) - start < 2.5:  # 2.5 s of simulated time
        time.sleep(0.05)
    ball = scene.object_states(sim)["ball"]
    assert 0.07 < ball[0] - 0.45 < 0.15          # rolled ~10 cm on the "turf", then stopped
    assert abs(ball[1]) < 0.01
    assert sim.call_in_sim(lambda m, d: np.linalg.norm(d.body("ball").cvel[3:])) < 0.02


@in_scene("disturbed-push")
def test_touching_the_vase_is_an_ir_failure(running: Running) -> None:
    states = running.scene.reset(running.sim, np.random.default_rng(0))
    geometry = running.scene.task.geometry
    assert isinstance(geometry, DisturbedPushGeometry)
    vase = states["obstacle"]
    touching = geometry.object_radius + geometry.obstacle_radius
    z = geometry.object_height / 2.0
    assert _failure_after_place(running, "object", np.array([vase[0] - touching, vase[1], z])) == 1.0
    assert _failure_after_place(running, "object", np.array([vase[0] - touching - 0.02, vase[1], z])) == 0.0


def test_the_pushed_object_at_the_goal_is_a_success(running: Running) -> None:
    scene, sim = running.scene, running.sim
    scene.reset(sim, np.random.default_rng(1))
    pushed = scene.task.pushed
    z = scene.object_states(sim)[pushed][2]
    scene.place(sim, pushed, np.array([*scene.goal, z]))
    states = scene.object_states(sim)
    assert scene.task.success(states, scene.goal)
    assert scene.task.cost(states, scene.ee_position(sim)) == 0.0


def test_static_objects_cannot_be_placed(running: Running) -> None:
    with pytest.raises(FarlError, match="movable objects"):
        running.scene.place(running.sim, "wall", np.zeros(3))


@in_scene("disturbed-push")
def test_scripted_human_moves_the_vase(running: Running) -> None:
    scene, sim = running.scene, running.sim
    assert isinstance(scene, DisturbedPushScene)
    rng = np.random.default_rng(3)
    scene.reset(sim, rng)
    geometry, motion = scene.geometry, scene.human.motion
    path = [scene.object_states(sim)["obstacle"]]
    for step in range(1, 51):  # 10 s of episode at 5 Hz
        scene.disturb(sim, step * CONTROL_PERIOD, rng)
        states = scene.object_states(sim)
        path.append(states["obstacle"])
        assert geometry.obstacle_region.contains(states["obstacle"][:2])
        assert scene.task.cost(states, scene.ee_position(sim)) == 0.0
    steps = np.linalg.norm(np.diff(np.array(path)[:, :2], axis=0), axis=1)
    assert steps.max() <= motion.speed * CONTROL_PERIOD + 1e-6
    assert steps.sum() > 0.10                       # it did walk around
    assert np.ptp(np.array(path)[:, 2]) < 1e-9       # and stayed on the table


def test_depth_deprojects_to_the_visible_surface(running: Running) -> None:
    scene, sim, camera = running.scene, running.sim, running.camera
    scene.reset(sim, np.random.default_rng(2))
    states = scene.object_states(sim)
    frame = camera.capture()
    assert frame.rgb.shape == (480, 640, 3) and frame.rgb.dtype == np.uint8
    assert frame.depth_mm.shape == (480, 640) and frame.depth_mm.dtype == np.uint16
    lens = camera.camera_to_base[:3, 3]
    geometry = scene.task.geometry
    for name in scene.movable:
        centre = states[name]
        if name == "ball":
            toward_camera = (lens - centre) / np.linalg.norm(lens - centre)
            surface = centre + geometry.ball_radius * toward_camera
        else:  # an upright cylinder: the centre of its top face
            height = geometry.obstacle_height if name == "obstacle" else geometry.object_height
            surface = centre + [0.0, 0.0, height / 2.0]
        u, v = np.rint(camera.project(surface)).astype(int)
        assert 0 <= u < 640 and 0 <= v < 480
        seen = camera.deproject(u, v, frame.depth_mm[v, u])
        assert np.linalg.norm(seen - surface) < 0.01, (name, seen, surface)
        colour = frame.rgb[v, u].astype(float)
        assert (colour.max() - colour.min()) / colour.max() > 0.8, (name, colour)  # saturated: a colour filter finds it


@in_scene("fragile-push-wall")
def test_depth_noise_is_seeded_and_grows_with_distance(running: Running) -> None:
    clean = running.camera.capture().depth_mm.astype(float)  # nothing moves meanwhile: the scene is at rest
    noisy_config = dataclasses.replace(running.scene.camera, depth_noise=0.005, max_depth=1.1, seed=7)
    noisy = []
    for _ in range(2):
        with SimulatedD435(running.sim, noisy_config) as noisy_camera:
            noisy.append(noisy_camera.capture().depth_mm.astype(float))
    assert np.all(noisy[0][clean > 1100] == 0)                    # beyond max_depth: no depth
    valid = (clean > 0) & (clean <= 1090)
    assert np.mean(noisy[0][valid] == noisy[1][valid]) > 0.99     # same seed, same noise
    z = clean[valid] / 1000.0
    relative = (noisy[0][valid] - clean[valid]) / 1000.0 / (0.005 * z ** 2)
    assert abs(relative.mean()) < 0.05 and 0.9 < relative.std() < 1.1


@in_scene("bounded-soccer")
def test_project_and_deproject_are_inverse(running: Running) -> None:
    camera = running.camera
    points = np.array([[0.4, 0.1, 0.0], [0.7, -0.2, 0.05], [0.55, 0.0, 0.3]])
    uv = camera.project(points)
    depth_mm = (points - camera.camera_to_base[:3, 3]) @ camera.camera_to_base[:3, 2] * 1000.0
    np.testing.assert_allclose(camera.deproject(uv[:, 0], uv[:, 1], depth_mm), points, atol=1e-9)
    target = np.array([0.52, 0.0, 0.0])  # the default look-at point sits on the optical axis
    np.testing.assert_allclose(camera.project(target), [319.5, 239.5], atol=1e-9)
    assert np.isnan(camera.deproject(10, 10, 0)).all()


class _StaticSim:
    """A bare MuJoCo model standing in for EmbeddedFrankaSim (the camera needs only these two members)."""

    def __init__(self, model: mujoco.MjModel) -> None:
        self.model = model
        self.data = mujoco.MjData(model)
        mujoco.mj_forward(model, self.data)

    def call_in_sim(self, fn: Callable[[mujoco.MjModel, mujoco.MjData], T], timeout: float = 5.0) -> T:
        return fn(self.model, self.data)


def test_off_centre_intrinsics_render_where_they_project() -> None:
    import xml.etree.ElementTree as ET

    # flat red tiles (a shaded sphere's colour-threshold centroid drifts towards its lit side)
    tiles = [(0.25, 0.12, 0.02), (0.45, -0.15, 0.05), (0.1, 0.2, 0.0)]
    config = D435Config(intrinsics=CameraIntrinsics(fx=600.0, fy=630.0, cx=331.0, cy=228.0),
                        extrinsics=CameraExtrinsics.look_at((0.9, 0.3, 0.7), (0.3, 0.0, 0.0)))
    for tile in tiles:
        root = ET.fromstring('<mujoco><worldbody><geom type="plane" size="2 2 0.1" rgba="0.2 0.2 0.2 1"/>'
                             f'<geom type="box" size="0.015 0.015 0.0005" pos="{tile[0]} {tile[1]} {tile[2]}" '
                             'rgba="1 0 0 1"/></worldbody></mujoco>')
        add_camera(root, config)
        sim = _StaticSim(mujoco.MjModel.from_xml_string(ET.tostring(root, encoding="unicode")))
        with SimulatedD435(sim, config) as camera:
            rgb = camera.capture().rgb.astype(int)
        rows, cols = np.nonzero((rgb[..., 0] > 40) & (rgb[..., 0] > 3 * rgb[..., 1] + 10))
        assert len(rows) > 200
        top_centre = np.array(tile) + [0.0, 0.0, 0.0005]
        np.testing.assert_allclose([cols.mean(), rows.mean()], camera.project(top_centre), atol=0.5)
    # MuJoCo's camera looks along its -z: our optical z axis
    np.testing.assert_allclose(camera.camera_to_base[:3, 2], -np.array(sim.data.cam_xmat[0]).reshape(3, 3)[:, 2])


def test_unknown_scene_and_missing_camera() -> None:
    with pytest.raises(FarlError, match="fragile-push-wall, disturbed-push, bounded-soccer"):
        make_franka_scene("soccer")
    sim = _StaticSim(mujoco.MjModel.from_xml_string("<mujoco><worldbody/></mujoco>"))
    with pytest.raises(FarlError, match="no camera 'd435'"):
        SimulatedD435(sim)
