"""The real-robot tasks' pure functions on hand-made states: spec, observation, IR failure, success, reward."""

from __future__ import annotations

import numpy as np
import pytest

from farl_core.errors import FarlError
from farl_core.franka_tasks import (
    FRANKA_TASKS,
    BoundedSoccerGeometry,
    DisturbedPushGeometry,
    FragilePushWallGeometry,
    TableRect,
    get_franka_task,
)
from farl_core.spec import SpecError

HIGH_EE = np.array([0.554, 0.0, 0.521])  # franky's default pose: far above everything


def test_registry_names_and_unknown_name() -> None:
    assert set(FRANKA_TASKS) == {"fragile-push-wall", "disturbed-push", "bounded-soccer"}
    assert get_franka_task("bounded-soccer").pushed == "ball"
    with pytest.raises(FarlError, match="fragile-push-wall, disturbed-push, bounded-soccer"):
        get_franka_task("push-wall")


def test_specs_name_the_observation_and_action_layout() -> None:
    assert get_franka_task("disturbed-push").spec.observation_names == (
        "ee_x", "ee_y", "ee_z", "gripper_width", "object_x", "object_y", "obstacle_x", "obstacle_y", "goal_x", "goal_y")
    assert get_franka_task("bounded-soccer").spec.observation_names[4:6] == ("ball_x", "ball_y")
    for task in FRANKA_TASKS.values():
        assert task.spec.action_names == ("dx", "dy", "dz", "gripper")
        assert task.spec.action_low == (-1.0,) * 4 and task.spec.action_high == (1.0,) * 4


def test_observation_layout_and_errors() -> None:
    task = get_franka_task("disturbed-push")
    objects = {"object": np.array([0.42, -0.14, 0.02]), "obstacle": np.array([0.52, 0.0, 0.07])}
    obs = task.observation(np.array([0.4, -0.2, 0.03]), 0.01, objects, np.array([0.62, 0.12]))
    assert obs.dtype == np.float32 and obs.shape == (task.spec.obs_dim,)
    np.testing.assert_allclose(obs, [0.4, -0.2, 0.03, 0.01, 0.42, -0.14, 0.52, 0.0, 0.62, 0.12], rtol=1e-6)
    with pytest.raises(FarlError, match="'obstacle'"):
        task.observation(HIGH_EE, 0.0, {"object": objects["object"]}, np.zeros(2))
    with pytest.raises(SpecError, match="object_x"):
        task.observation(HIGH_EE, 0.0, {**objects, "object": np.array([np.nan, 0.0, 0.02])}, np.zeros(2))


def test_table_rect_distance() -> None:
    rect = TableRect(0.0, 1.0, 0.0, 2.0)
    assert rect.distance(np.array([0.5, 1.0])) == 0.0
    assert rect.distance(np.array([1.3, 1.0])) == pytest.approx(0.3)
    assert rect.distance(np.array([-0.3, 2.4])) == pytest.approx(0.5)


def test_fragile_push_wall_cost() -> None:
    task = get_franka_task("fragile-push-wall")
    geometry = task.geometry
    assert isinstance(geometry, FragilePushWallGeometry)
    wall, r, z = geometry.wall, geometry.object_radius, geometry.object_height / 2.0

    def cost(x: float, y: float, height: float = z) -> float:
        return task.cost({"object": np.array([x, y, height])}, HIGH_EE)

    y_mid = float(wall.centre[1])
    assert cost(wall.x_min - r, y_mid) == 1.0                      # touching the front face
    assert cost(wall.x_min - r - 0.004, y_mid) == 1.0              # within the 5 mm contact margin
    assert cost(wall.x_min - r - 0.006, y_mid) == 0.0
    assert cost(wall.x_max + r + 0.02, y_mid) == 0.0               # behind the wall, clear of it
    assert cost(wall.x_min - 0.004, wall.y_min - r - 0.003) == 1.0  # brushing the free end
    assert cost(0.55, wall.y_min - r - 0.01) == 0.0                 # passing the free end with 1 cm to spare
    lifted = geometry.wall_height + geometry.object_height / 2.0 + 0.01
    assert cost(wall.x_min - r, y_mid, lifted) == 0.0               # carried over the wall


def test_disturbed_push_cost_puck_and_gripper() -> None:
    task = get_franka_task("disturbed-push")
    geometry = task.geometry
    assert isinstance(geometry, DisturbedPushGeometry)
    vase = np.array([0.52, 0.0, geometry.obstacle_height / 2.0])
    touching = geometry.object_radius + geometry.obstacle_radius
    far_puck = np.array([0.40, -0.20, 0.02])

    def cost(puck_xy: tuple[float, float], ee: np.ndarray = HIGH_EE) -> float:
        return task.cost({"object": np.array([*puck_xy, 0.02]), "obstacle": vase}, ee)

    assert cost((0.52 - touching, 0.0)) == 1.0
    assert cost((0.52 - touching - 0.01, 0.0)) == 0.0
    # the gripper at pushing height: fingers (11 mm thick in x) and hand (10.4 cm long in y)
    gripper = geometry.gripper
    along_x = geometry.obstacle_radius + gripper.hand_half_x
    along_y = geometry.obstacle_radius + gripper.hand_half_y
    assert cost(far_puck[:2], np.array([0.52 - along_x + 0.002, 0.0, 0.03])) == 1.0
    assert cost(far_puck[:2], np.array([0.52 - along_x - 0.01, 0.0, 0.03])) == 0.0
    assert cost(far_puck[:2], np.array([0.52, along_y - 0.01, 0.03])) == 1.0   # the hand is long along y
    assert cost(far_puck[:2], np.array([0.52, along_y + 0.01, 0.03])) == 0.0
    above = geometry.obstacle_height - gripper.finger_z[0] + 0.01
    assert cost(far_puck[:2], np.array([0.52, 0.0, above])) == 0.0             # hovering over the vase
    assert cost(far_puck[:2], np.array([0.52, 0.0, above - 0.02])) == 1.0


def test_bounded_soccer_cost() -> None:
    task = get_franka_task("bounded-soccer")
    geometry = task.geometry
    assert isinstance(geometry, BoundedSoccerGeometry)
    boundary, r = geometry.boundary, geometry.ball_radius

    def cost(x: float, y: float) -> float:
        return task.cost({"ball": np.array([x, y, r])}, HIGH_EE)

    assert cost(0.5, 0.0) == 0.0
    assert cost(boundary.x_max - 0.005, 0.0) == 0.0
    assert cost(boundary.x_max + 0.005, 0.0) == 1.0
    assert cost(0.5, boundary.y_min - 0.005) == 1.0
    assert cost(boundary.x_min - 0.005, boundary.y_max) == 1.0


def test_success_and_reward() -> None:
    task = get_franka_task("fragile-push-wall")
    radius, shaping = task.geometry.success_radius, task.shaping
    goal = np.array([0.65, 0.08])
    at_goal = {"object": np.array([0.65, 0.08 + radius - 0.001, 0.03])}
    near = {"object": np.array([0.65, 0.08 + radius + 0.001, 0.03])}
    far = {"object": np.array([0.45, 0.08, 0.03])}
    assert task.success(at_goal, goal) and not task.success(near, goal)

    def ee_at(objects: dict[str, np.ndarray]) -> np.ndarray:  # the gripper right behind the object
        return objects["object"] + np.array([-0.04, 0.0, 0.0])

    assert task.reward(at_goal, ee_at(at_goal), goal) == pytest.approx(shaping.success_bonus - (radius - 0.001))
    assert task.reward(far, ee_at(far), goal) == pytest.approx(-0.20)
    # progress, success and reaching the object each raise the reward
    assert task.reward(at_goal, ee_at(at_goal), goal) > task.reward(near, ee_at(near), goal) + 0.5
    assert task.reward(near, ee_at(near), goal) > task.reward(far, ee_at(far), goal)
    away = far["object"] + np.array([0.0, 0.0, 0.3])
    assert task.reward(far, away, goal) == pytest.approx(-0.20 - shaping.reach_weight * (0.3 - shaping.reach_tolerance))


@pytest.mark.parametrize("name", sorted(FRANKA_TASKS))
def test_sampled_starts_are_valid_and_safe(name: str) -> None:
    task = get_franka_task(name)
    rng = np.random.default_rng(0)
    for _ in range(50):
        objects, goal = task.sample_start(rng)
        assert set(objects) == set(task.object_names) - {"wall"}
        assert task.geometry.goal_region.contains(goal)
        assert task.cost(objects, HIGH_EE) == 0.0
        assert not task.success(objects, goal)
        assert task.observation(HIGH_EE, 0.04, objects, goal).shape == (task.spec.obs_dim,)
        geometry = task.geometry
        if isinstance(geometry, DisturbedPushGeometry):
            assert geometry.obstacle_allowed(objects["obstacle"][:2], goal, objects["object"])


def test_goal_area_is_inside_the_soccer_boundary() -> None:
    geometry = BoundedSoccerGeometry()
    corners = [(x, y) for x in (geometry.goal_region.x_min, geometry.goal_region.x_max)
               for y in (geometry.goal_region.y_min, geometry.goal_region.y_max)]
    for corner in corners:
        assert geometry.boundary.distance(np.array(corner)) == 0.0
        assert geometry.boundary.contains(np.array(corner) + [geometry.success_radius, 0.0])
