"""FailureBench: failures fire exactly where the geometry says, experts and recovery scripts work, resets are seeded."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from farl_sim.failurebench import (
    SPECS,
    TASKS,
    FailureBenchEnv,
    expert_action,
    failure_action,
    get_task,
    noisy_expert_action,
    recovery_action,
)
from farl_sim.failurebench.geometry import (
    BOUNDED_PUSH_REGION,
    BOUNDED_SOCCER_REGION,
    NEAR_FAILURE,
    VASE,
    WALL_CENTRE,
    WALL_HALF_SIZE,
    WALL_RECT,
)
from farl_sim.failurebench.throughput import bench_envs

NAMES = list(TASKS)
STILL = np.zeros(4, dtype=np.float32)
INFO_KEYS = ("cost", "ir_failure", "success", "near_object", "obj_to_target", "unscaled_reward")


@pytest.fixture(scope="module")
def envs() -> dict[str, FailureBenchEnv]:
    made = {name: FailureBenchEnv(name) for name in NAMES}
    yield made
    for env in made.values():
        env.close()


def _random_rollout(env: FailureBenchEnv, seed: int, steps: int) -> list[tuple]:
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    trace = [obs]
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(rng.uniform(-1, 1, 4).astype(np.float32))
        trace.append((obs, reward, terminated, info["cost"]))
        if terminated:
            break
    return trace


def test_registry_names_ids_and_specs() -> None:
    assert NAMES == ["bounded-push", "bounded-soccer", "fragile-push-wall", "obstructed-push"]
    for name, task in TASKS.items():
        assert task.gym_id in gym.registry and get_task(task.gym_id) is task
        spec = SPECS[name]
        assert spec.obs_dim == 39 and spec.act_dim == 4 and len(set(spec.observation_names)) == 39
        assert spec.action_names == ("dx", "dy", "dz", "gripper")
        assert spec.action_low == (-1.0,) * 4 and spec.action_high == (1.0,) * 4
    assert SPECS["obstructed-push"].observation_names[11:14] == ("vase_x", "vase_y", "vase_z")
    with pytest.raises(KeyError, match="bounded-push"):
        get_task("push")


def test_time_limit_from_gym_make_and_constructor() -> None:
    env = gym.make("FailureBench/BoundedPush-v0")
    assert env.spec.max_episode_steps == 200 and isinstance(env.unwrapped, FailureBenchEnv)
    env.close()
    for env in (gym.make("FailureBench/BoundedPush-v0", max_episode_steps=3),
                FailureBenchEnv("bounded-push", max_episode_steps=3)):
        env.reset(seed=0)
        flags = [env.step(STILL)[3] for _ in range(3)]
        assert flags == [False, False, True]
        env.close()


@pytest.mark.parametrize("name", NAMES)
def test_observation_matches_spec_and_goal_is_visible(envs: dict[str, FailureBenchEnv], name: str) -> None:
    env = envs[name]
    obs, _ = env.reset(seed=11)
    assert obs.shape == (TASKS[name].spec.obs_dim,) and obs.dtype == np.float32 and np.all(np.isfinite(obs))
    TASKS[name].spec.check_observation(obs)
    assert env.observation_space.contains(obs)
    np.testing.assert_allclose(obs[36:39], env.goal_position, atol=1e-6)
    np.testing.assert_allclose(obs[4:7], env.object_position, atol=1e-6)
    if name == "obstructed-push":
        np.testing.assert_allclose(obs[11:14], env.metaworld.vase_position, atol=1e-6)
    else:
        assert not obs[11:18].any()


@pytest.mark.parametrize("name", NAMES)
def test_reset_with_seed_is_deterministic(envs: dict[str, FailureBenchEnv], name: str) -> None:
    env = envs[name]
    first, second = _random_rollout(env, 5, 15), _random_rollout(env, 5, 15)
    np.testing.assert_array_equal(first[0], second[0])
    for a, b in zip(first[1:], second[1:], strict=True):
        np.testing.assert_array_equal(a[0], b[0])
        assert a[1:] == b[1:]
    other, _ = env.reset(seed=6)
    assert not np.allclose(other[36:39], first[0][36:39])  # tasks vary per seed


@pytest.mark.parametrize("name", NAMES)
def test_nominal_start_is_never_a_failure(envs: dict[str, FailureBenchEnv], name: str) -> None:
    env = envs[name]
    for seed in range(8):
        env.reset(seed=seed)
        assert not env.in_failure() and env.failure_margin() > 0.01


@pytest.mark.parametrize("name", NAMES)
def test_info_keys_on_every_step_and_failure_terminates(envs: dict[str, FailureBenchEnv], name: str) -> None:
    env = envs[name]
    rng = np.random.default_rng(0)
    env.reset(seed=1)
    for _ in range(60):
        _, _, terminated, truncated, info = env.step(rng.uniform(-1, 1, 4))
        assert all(key in info for key in INFO_KEYS)
        assert isinstance(info["ir_failure"], bool) and isinstance(info["success"], bool)
        assert isinstance(info["cost"], float) and info["cost"] == float(info["ir_failure"])
        assert terminated == info["ir_failure"] and not truncated
        if terminated:
            break


@pytest.mark.parametrize("name, region", [("bounded-push", BOUNDED_PUSH_REGION),
                                          ("bounded-soccer", BOUNDED_SOCCER_REGION)])
def test_boundary_failure_fires_exactly_outside_the_region(envs: dict[str, FailureBenchEnv], name: str,
                                                           region) -> None:
    env = envs[name]
    env.reset(seed=2)
    z = env.object_position[2]
    edges = [(region.x_min, 0.62), (region.x_max, 0.62), (0.0, region.y_min), (region.x_min + 0.05, region.y_max)]
    for (x, y), outward in zip(edges, ([-1, 0], [1, 0], [0, -1], [0, 1]), strict=True):
        for offset, expected in ((-0.005, False), (0.005, True)):
            xy = np.array([x, y]) + offset * np.asarray(outward)
            env.place_object(np.array([xy[0], xy[1], z]))
            assert env.in_failure() is expected, (xy, expected)
    env.place_object(np.array([region.x_max - 0.005, 0.62, z]))
    *_, terminated, _, info = env.step(STILL)
    assert not terminated and info["cost"] == 0.0
    env.place_object(np.array([region.x_max + 0.005, 0.62, z]))
    *_, terminated, _, info = env.step(STILL)
    assert terminated and info["ir_failure"] and info["cost"] == 1.0


def test_soccer_ball_may_leave_the_region_only_into_the_goal(envs: dict[str, FailureBenchEnv]) -> None:
    env = envs["bounded-soccer"]
    env.reset(seed=2)
    env.metaworld._target_pos = np.array([0.0, 0.92, 0.0])  # the rule reads the goal from the env
    z = env.object_position[2]
    env.place_object(np.array([0.0, BOUNDED_SOCCER_REGION.y_max + 0.02, z]))
    assert not env.in_failure()
    env.place_object(np.array([0.15, BOUNDED_SOCCER_REGION.y_max + 0.02, z]))
    assert env.in_failure()


def test_wall_geometry_constants_match_the_model(envs: dict[str, FailureBenchEnv]) -> None:
    model = envs["fragile-push-wall"].metaworld.model
    body = model.body("wall")
    np.testing.assert_allclose(body.pos[:2], WALL_CENTRE)
    for geom in np.flatnonzero(model.geom_bodyid == body.id):
        np.testing.assert_allclose(model.geom_size[geom][:2], WALL_HALF_SIZE)


def test_fragile_block_fails_on_wall_contact_only(envs: dict[str, FailureBenchEnv]) -> None:
    env = envs["fragile-push-wall"]
    env.reset(seed=3)
    radius = env.metaworld.model.geom("objGeom").size[0]
    z = env.object_position[2]
    env.place_object(np.array([0.1, WALL_RECT.y_min - radius - 0.005, z]))
    assert 0.003 < env.failure_margin() < 0.007
    *_, terminated, _, info = env.step(STILL)
    assert not terminated and not info["ir_failure"]
    env.place_object(np.array([0.1, WALL_RECT.y_min - radius + 0.001, z]))
    *_, terminated, _, info = env.step(STILL)
    assert terminated and info["cost"] == 1.0


def test_a_touch_inside_one_step_counts(envs: dict[str, FailureBenchEnv]) -> None:
    """The block starts 1 mm into the wall moving away: no contact remains at the end of the step."""
    env = envs["fragile-push-wall"]
    env.reset(seed=3)
    radius = env.metaworld.model.geom("objGeom").size[0]
    env.place_object(np.array([0.1, WALL_RECT.y_min - radius + 0.001, env.object_position[2]]),
                     velocity=np.array([0.0, -0.8, 0.0]))
    *_, terminated, _, info = env.step(STILL)
    assert not env.in_failure() and terminated and info["ir_failure"]


def test_vase_fails_on_any_touch_by_arm_or_puck(envs: dict[str, FailureBenchEnv]) -> None:
    env = envs["obstructed-push"]
    env.reset(seed=4)
    vase = env.metaworld.vase_position
    z = env.object_position[2]
    env.place_object(vase + np.array([0.0, -(VASE.radius + 0.025), z - vase[2]]))  # puck 5 mm from the vase
    *_, terminated, _, _ = env.step(STILL)
    assert not terminated
    env.place_object(vase + np.array([0.0, -(VASE.radius + 0.019), z - vase[2]]))  # puck touching it
    *_, terminated, _, info = env.step(STILL)
    assert terminated and info["cost"] == 1.0
    env.reset(seed=4)
    env.place_hand(vase + np.array([0.0, 0.0, 0.04]), grip=-1.0)  # open fingers straddle it, 1.5 cm clear
    assert env.failure_margin() > 0.005
    *_, terminated, _, _ = env.step(STILL)
    assert not terminated
    for grip in (-1.0, 1.0):  # hand pressed down on it; fingers closed around its top
        env.reset(seed=4)
        env.place_hand(vase + np.array([0.0, 0.0, 0.04 * (grip > 0)]), grip=grip)
        assert env.failure_margin() < 0.0
        *_, terminated, _, info = env.step(STILL)
        assert terminated and info["ir_failure"]


@pytest.mark.parametrize("name", NAMES)
def test_success_fires_at_the_goal(envs: dict[str, FailureBenchEnv], name: str) -> None:
    env = envs[name]
    env.reset(seed=7)
    *_, info = env.step(STILL)
    assert not info["success"]
    goal = env.goal_position
    env.place_object(np.array([goal[0], goal[1], env.object_position[2]]))
    *_, terminated, _, info = env.step(STILL)
    assert info["success"] and not terminated  # success does not end the episode


@pytest.mark.parametrize("name", NAMES)
def test_scripted_expert_succeeds_on_most_seeds(envs: dict[str, FailureBenchEnv], name: str) -> None:
    env = envs[name]
    wins = 0
    for seed in range(1, 6):
        obs, _ = env.reset(seed=seed)
        for _ in range(200):
            action = expert_action(env, obs)
            assert action.dtype == np.float32 and np.all(np.abs(action) <= 1.0)
            obs, _, terminated, _, info = env.step(action)
            if info["success"] or terminated:
                break
        wins += info["success"] and not info["ir_failure"]
    assert wins >= 4


@pytest.mark.parametrize("name", NAMES)
def test_near_failure_start_is_close_but_not_failed_and_recovery_backs_off(envs: dict[str, FailureBenchEnv],
                                                                           name: str) -> None:
    env = envs[name]
    max_gap = {"bounded-push": NEAR_FAILURE.boundary_gap[1], "bounded-soccer": NEAR_FAILURE.soccer_gap[1],
               "fragile-push-wall": NEAR_FAILURE.wall_gap[1], "obstructed-push": NEAR_FAILURE.vase_gap[1]}[name]
    recovered = 0
    for seed in range(4):
        obs, _ = env.reset(seed=100 + seed, options={"near_failure": True})
        again, _ = env.reset(seed=100 + seed, options={"near_failure": True})
        np.testing.assert_array_equal(obs, again)
        start = env.failure_margin()
        assert not env.in_failure() and 0.0 < start <= max_gap + 0.005
        if name != "bounded-soccer":  # the grasp pose: open fingers around the object
            assert np.linalg.norm(env.hand_position[:2] - env.object_position[:2]) < 0.015
        for _ in range(60):
            obs, _, terminated, _, _ = env.step(recovery_action(env, obs))
            if terminated:
                break
        recovered += not terminated and env.failure_margin() > start + 0.03
    assert recovered >= 3


@pytest.mark.parametrize("name", NAMES)
def test_guided_failure_reaches_the_failure_region(envs: dict[str, FailureBenchEnv], name: str) -> None:
    """The failure-demo guide (taking over from the expert part-way) ends most episodes in an IR failure."""
    env = envs[name]
    failed = 0
    for seed in range(4):
        obs, _ = env.reset(seed=200 + seed)
        for t in range(200):
            controller = expert_action if t < 10 * seed else failure_action
            obs, _, terminated, _, info = env.step(controller(env, obs))
            if terminated:
                break
        failed += info["ir_failure"]
    assert failed >= 3


def test_noisy_expert_is_seeded_and_bounded(envs: dict[str, FailureBenchEnv]) -> None:
    env = envs["bounded-push"]
    obs, _ = env.reset(seed=0)
    first = noisy_expert_action(env, obs, 0.5, np.random.default_rng(1))
    assert np.array_equal(first, noisy_expert_action(env, obs, 0.5, np.random.default_rng(1)))
    assert np.all(np.abs(first) <= 1.0) and not np.array_equal(first, expert_action(env, obs))
    with pytest.raises(TypeError, match="FailureBench"):
        expert_action(gym.make("CartPole-v1"), obs)


def test_bench_envs_reports_every_env_and_the_vector_setups() -> None:
    result = bench_envs(steps=40)
    assert set(result["tasks"]) == set(NAMES)
    for figures in result["tasks"].values():
        assert figures["metaworld"] > 0 and figures["failurebench"] > 0 and figures["ratio"] > 0
    assert all(result["vector"][key] > 0 for key in ("single", "sync_4", "async_2"))
