"""BoundedPointMass: failure and success fire exactly where its geometry says."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from farl_core.spec import SpecError
from farl_sim.point_mass import (
    SPEC,
    BoundedPointMassEnv,
    PointMassGeometry,
    demonstrations,
    expert_action,
    failure_action,
)
from farl_sim.recording import record_episodes, record_failures

GEOMETRY = PointMassGeometry()


def test_nominal_start_is_safe_and_registered() -> None:
    env = gym.make("FARL/BoundedPointMass-v0")
    obs, _ = env.reset(seed=0)
    assert abs(obs[1]) < GEOMETRY.half_width
    _, _, term, _, info = env.step(np.zeros(2, dtype=np.float32))
    assert not term and info["cost"] == 0.0 and not info["ir_failure"]


def test_crossing_the_wall_is_an_ir_failure() -> None:
    env = BoundedPointMassEnv()
    env.reset(options={"state": [0.0, GEOMETRY.half_width - 0.01, 0.0, 0.5]})
    _, reward, term, trunc, info = env.step(np.array([0.0, 1.0], dtype=np.float32))
    assert term and not trunc and info["ir_failure"] and info["cost"] == 1.0 and reward == 0.0


def test_staying_just_inside_is_not_a_failure() -> None:
    env = BoundedPointMassEnv()
    env.reset(options={"state": [0.0, GEOMETRY.half_width - 0.01, 0.0, 0.0]})
    _, _, term, _, info = env.step(np.zeros(2, dtype=np.float32))
    assert not term and not info["ir_failure"]


def test_reaching_the_goal_is_success() -> None:
    env = BoundedPointMassEnv()
    env.reset(options={"state": [GEOMETRY.goal[0] - 0.05, 0.0, 0.5, 0.0]})
    _, reward, term, _, info = env.step(np.array([1.0, 0.0], dtype=np.float32))
    assert term and info["success"] and not info["ir_failure"] and reward > 5.0


def test_expert_succeeds_without_failures() -> None:
    data = record_episodes(BoundedPointMassEnv(), expert_action, 20, np.random.default_rng(0), SPEC)
    episodes = data.episode_slices()
    assert data.cost.sum() == 0
    assert sum(bool(data.terminated[s][-1]) for s in episodes) == 20  # all end by success


def test_nan_action_is_rejected() -> None:
    env = BoundedPointMassEnv()
    env.reset(seed=0)
    with pytest.raises(SpecError, match="NaN/inf in 'ay'"):
        env.step(np.array([0.0, np.nan]))


def test_demonstration_roles() -> None:
    failure = demonstrations("failure", 30, seed=1)
    recovery = demonstrations("recovery", 30, seed=1)
    assert failure.cost.sum() >= 10  # failure demos contain many failures
    assert np.all(np.abs(recovery.obs[:, 1]) < GEOMETRY.half_width)
    assert max(s.stop - s.start for s in recovery.episode_slices()) <= 15


def test_failure_recorder_keeps_only_failing_episodes_up_to_the_budget() -> None:
    data = record_failures(BoundedPointMassEnv(), expert_action, 300, np.random.default_rng(0), SPEC,
                           noise=2.0, max_episodes=200)
    episodes = data.episode_slices()
    assert len(data) >= 300 and len(data) - (episodes[-1].stop - episodes[-1].start) < 300
    assert all(data.cost[s].sum() == 1 and data.cost[s][-1] == 1 for s in episodes)  # fails, then ends
    nothing = record_failures(BoundedPointMassEnv(), expert_action, 100, np.random.default_rng(0), SPEC,
                              noise=0.0, max_episodes=3)  # the noiseless expert never fails
    assert len(nothing) == 0 and nothing.obs.shape == (0, SPEC.obs_dim)


def test_failure_recorder_hands_over_to_the_guide() -> None:
    """With a guide, failures come even from a controller that never fails; each starts on its path."""
    data = record_failures(BoundedPointMassEnv(), expert_action, 200, np.random.default_rng(0), SPEC, noise=0.0,
                           max_episodes=50, guide=failure_action, guide_fraction=1.0, handover_within=20)
    episodes = data.episode_slices()
    assert len(data) >= 200 and all(data.cost[s][-1] == 1 for s in episodes)
    handed_over = [int(np.argmax(np.any(np.abs(data.act[s] - expert_action(data.obs[s])) > 1e-6, axis=1)))
                   for s in episodes]
    assert len(set(handed_over)) > 1 and max(handed_over) < 20  # drawn per episode, within the window
