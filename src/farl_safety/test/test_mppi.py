"""The MPPI recovery planner on a hand-planted world model whose unsafe region, reward and
dynamics are known exactly: it must stay out of the region, prefer reward among safe plans,
fall back to the least risky plan, be seeded-deterministic, and work inside the shield."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from farl_core.spec import TaskSpec
from farl_safety.mppi import MPPIConfig, MPPIPlanner
from farl_safety.shield import Shield, ShieldConfig
from farl_safety.world_model import WorldModel, WorldModelConfig

SPEC = TaskSpec(name="Plane", observation_names=("x", "y"), action_names=("ax", "ay"),
                action_low=(-2.0, -2.0), action_high=(2.0, 2.0))
WALL = 0.2  # y > WALL is unsafe
STEP = 0.1  # position change per unit (scaled) action


class Fn(nn.Module):
    """A function as a module, to plant known components into a WorldModel."""

    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


def plane_model() -> WorldModel:
    """Latent = position; a (scaled to [-1, 1]) moves it by STEP * a; reward a_x + a_y, so the
    greedy plan (1, 1) heads into the wall; failure logit rises steeply once y' > WALL."""
    model = WorldModel(SPEC, WorldModelConfig(latent_dim=2, hidden=(4,), horizon=5))
    model.encoder = Fn(lambda obs: obs)
    model.dynamics = Fn(lambda za: za[..., :2] + STEP * za[..., 2:])
    model.reward_head = Fn(lambda za: za[..., 2:3] + za[..., 3:4])
    model.constraint_head = Fn(lambda za: 60.0 * (za[..., 1:2] + STEP * za[..., 3:4] - WALL))
    return model


def plan(obs: list[float], seed: int = 0, **config) -> np.ndarray:
    planner = MPPIPlanner(plane_model(), MPPIConfig(**config), seed=seed)
    return planner.mean(torch.tensor([obs]))[0].numpy()


def test_receding_horizon_stays_out_of_the_unsafe_region_and_keeps_earning_reward() -> None:
    planner = MPPIPlanner(plane_model(), MPPIConfig(), seed=0)
    position, reward = torch.zeros(1, 2), 0.0
    for _ in range(15):
        action = planner.mean(position)
        unit = action / 2.0  # the box is [-2, 2]
        position = position + STEP * unit
        reward += float(unit.sum())
        assert float(position[0, 1]) <= WALL, "the planner walked into the unsafe region"
    # Greedy (1, 1) would earn 2 per step but cross the wall by step 3; staying still earns 0.
    # Safe and reward-seeking: nearly full speed along x (the reward no risk limits), and the
    # y reward taken only as far as the wall allows (y ends on the rewarding side, never past it).
    assert float(position[0, 0]) > 0.9 * 15 * STEP
    assert float(position[0, 1]) > 0.0
    assert reward > 0.9 * 15


def test_without_any_safe_plan_it_takes_the_least_risky_one() -> None:
    action = plan([0.0, 0.6])  # deep in the unsafe region: every 4-step plan has risk > eps_safe
    assert action[1] < -0.8 * 2.0  # retreat from the wall at (nearly) full speed


def test_planning_is_seeded_and_batched() -> None:
    obs = torch.tensor([[0.0, 0.0], [0.0, 0.6], [0.3, 0.15]])
    first = MPPIPlanner(plane_model(), MPPIConfig(), seed=3).mean(obs)
    second = MPPIPlanner(plane_model(), MPPIConfig(), seed=3).mean(obs)
    other = MPPIPlanner(plane_model(), MPPIConfig(), seed=4).mean(obs)
    assert first.shape == (3, 2)
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    assert not torch.equal(first, other)
    assert bool((first.abs() <= 2.0).all())


def test_config_and_horizon_are_checked() -> None:
    with pytest.raises(ValueError, match="training horizon"):
        MPPIPlanner(plane_model(), MPPIConfig(horizon=6))
    with pytest.raises(ValueError, match="num_elites"):
        MPPIConfig(num_samples=8, num_elites=16)


@dataclass
class HeightCritic:
    """Risk stand-in: the observation's y."""

    spec: TaskSpec = SPEC

    def risk(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return obs[:, 1]


def test_planner_is_the_shields_recovery_actor() -> None:
    shield = Shield(HeightCritic(), MPPIPlanner(plane_model(), MPPIConfig(), seed=5), ShieldConfig(eps_safe=0.3))
    obs = np.array([[0.0, 0.0], [0.0, 0.6]], dtype=np.float32)
    proposed = np.array([[1.0, 1.0], [2.0, 2.0]], dtype=np.float32)
    executed, verdicts = shield.filter(obs, proposed)
    assert [v.overridden for v in verdicts] == [False, True]
    np.testing.assert_array_equal(executed[0], proposed[0])
    expected = MPPIPlanner(plane_model(), MPPIConfig(), seed=5).mean(torch.as_tensor(obs[1:]))[0].numpy()
    np.testing.assert_array_equal(executed[1], expected)
    assert executed[1, 1] < 0.0
