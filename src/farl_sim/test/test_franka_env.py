"""FrankaSim envs: the bridge (real franky client on franky-sim) plus a task scene behind gymnasium."""

from __future__ import annotations

from collections.abc import Iterator

import gymnasium as gym
import numpy as np
import pytest

import farl_sim.franka_scenes  # noqa: F401  (registers the ids)
from farl_sim.franka_scenes.env import FrankaSimEnv


@pytest.fixture(scope="module")
def env() -> Iterator[FrankaSimEnv]:
    made = FrankaSimEnv("fragile-push-wall", max_episode_steps=5)
    yield made
    made.close()


def test_gym_ids_are_registered() -> None:
    for name in ("FragilePushWall", "DisturbedPush", "BoundedSoccer"):
        assert gym.spec(f"FrankaSim/{name}-v0").entry_point == "farl_sim.franka_scenes.env:FrankaSimEnv"


def test_observation_follows_the_task_spec_and_actions_move_the_arm(env: FrankaSimEnv) -> None:
    obs, info = env.reset(seed=0)
    spec = env.task.spec
    assert obs.shape == (spec.obs_dim,) and not info["ir_failure"]
    names = list(spec.observation_names)
    start = obs[[names.index("ee_x"), names.index("ee_y"), names.index("ee_z")]]
    before = env.bridge.robot_time()
    period = 1.0 / env.bridge.config.control_rate_hz
    steps = []
    for _ in range(3):
        obs, reward, terminated, truncated, info = env.step(np.array([0.0, 0.0, -1.0, -1.0], dtype=np.float32))
        assert np.isfinite(reward) and not terminated and not info["rejected"]
        steps.append(info["dt"])
    # Each step lasts at least one control period of robot time and reports how long it really took
    # (a starved CPU can overrun it; CI saw 0.3 s for one 0.2 s step, so no upper bound is asserted).
    assert min(steps) >= period - 1e-3
    assert sum(steps) <= env.bridge.robot_time() - before + 1e-3
    moved = obs[names.index("ee_z")] - start[2]
    assert -3 * env.bridge.config.limits.max_translation - 0.005 < moved < -0.03  # down, at most the step cap


def test_truncates_at_the_time_limit(env: FrankaSimEnv) -> None:
    env.reset(seed=1)
    flags = [env.step(np.zeros(4, dtype=np.float32))[3] for _ in range(5)]
    assert flags == [False] * 4 + [True]


def test_an_object_in_the_failure_region_ends_the_episode(env: FrankaSimEnv) -> None:
    env.reset(seed=2)
    wall = env.task.geometry.wall
    env.scene.place(env.sim, "object", np.array([wall.x_min - 0.02, wall.centre[1], 0.03]))
    *_, terminated, _, info = env.step(np.zeros(4, dtype=np.float32))
    assert terminated and info["ir_failure"] and info["cost"] == 1.0


def test_nan_action_is_held_by_the_bridge_not_passed_on(env: FrankaSimEnv) -> None:
    env.reset(seed=3)
    *_, info = env.step(np.array([np.nan, 0.0, 0.0, 0.0], dtype=np.float32))
    assert info["rejected"] and info["bridge_status"] == "holding"
