"""FOSP's offline policy extraction: the augmented Lagrangian's rule, the REF-gated weights on
planted critics, and that the extracted policy avoids the failing data actions on the point mass."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from farl_core.transitions import Transitions
from farl_policy.critics import CriticConfig, train_critics
from farl_policy.gaussian import PolicyConfig
from farl_safety.calibration import failure_within_horizon
from farl_safety.reachability import ReachabilityConfig, train_reachability
from farl_safety.safe_offline import AugmentedLagrangian, SafeOfflineConfig, extraction_weights, train_safe_policy
from farl_sim.point_mass import SPEC as POINT_MASS
from farl_sim.point_mass import BoundedPointMassEnv, demonstrations

pytestmark = pytest.mark.minutes(1)  # of one core (conftest.py schedules it early)


def test_augmented_lagrangian_term_and_updates() -> None:
    lagrangian = AugmentedLagrangian(SafeOfflineConfig(multiplier_init=0.5, penalty_init=0.2, penalty_growth=0.5,
                                                       penalty_max=0.25))
    g = torch.tensor(0.3)
    assert torch.isclose(lagrangian.term(g), torch.tensor(0.5 * 0.3 + 0.5 * 0.2 * 0.09))  # active: lambda g + c g^2/2
    lagrangian.update(0.3)
    assert lagrangian.multiplier == pytest.approx(0.56) and lagrangian.penalty == 0.25  # c grew, capped at 0.25
    lagrangian.update(-10.0)
    assert lagrangian.multiplier == 0.0  # the multiplier never goes negative
    inactive = lagrangian.term(torch.tensor(-1.0, requires_grad=True))
    assert float(inactive) == 0.0 and not inactive.requires_grad  # a satisfied constraint pulls on nothing


@dataclass
class Planted:
    """Critics with planted outputs per row: what extraction_weights reads of them."""

    v_ref: torch.Tensor
    q_ref: torch.Tensor
    adv: torch.Tensor
    config: ReachabilityConfig = ReachabilityConfig(feasible=0.5)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.v_ref

    def q_value(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return self.q_ref

    def advantage(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return self.adv


def test_weights_follow_the_reward_where_feasible_and_the_reachability_where_not() -> None:
    config = SafeOfflineConfig(reward_temperature=1.0, reachability_temperature=2.0)
    #  rows: feasible state, good action; feasible state, infeasible action; infeasible state, safer action;
    #        a huge advantage is clipped
    planted = Planted(v_ref=torch.tensor([0.0, 0.0, 1.0, 0.0]), q_ref=torch.tensor([0.1, 0.9, 0.6, 0.0]),
                      adv=torch.tensor([1.0, 5.0, 3.0, 50.0]))
    weights = extraction_weights(torch.zeros(4, 2), torch.zeros(4, 1), planted, planted, config)
    expected = torch.tensor([torch.e, 0.0, float(torch.exp(torch.tensor(2.0 * (1.0 - 0.6)))),
                             config.reward_weight_clip])
    assert torch.allclose(weights, expected)


@pytest.fixture(scope="module")
def extracted():
    torch.set_num_threads(1)
    data = Transitions.concat([demonstrations("task", 30, 0), demonstrations("recovery", 120, 1),
                               demonstrations("failure", 300, 2)])
    critics = train_critics(data, POINT_MASS, CriticConfig(hidden=(64, 64), steps=1500), seed=0)
    ref = train_reachability(data, POINT_MASS, ReachabilityConfig(hidden=(64, 64), steps=3000), seed=0)
    policy, stats = train_safe_policy(data, POINT_MASS, critics, ref, SafeOfflineConfig(steps=1500, lr=1e-3),
                                      PolicyConfig(hidden=(64, 64)), seed=0)
    return policy, stats, critics, ref


def test_the_actions_that_led_to_a_failure_weigh_less_than_the_task_demos(extracted) -> None:
    _, _, critics, ref = extracted
    task, failure = demonstrations("task", 20, 7), demonstrations("failure", 100, 8)
    doomed = failure.subset(failure_within_horizon(failure, 3))

    def mean_weight(data: Transitions) -> float:
        obs, act = torch.as_tensor(data.obs), torch.as_tensor(data.act)
        return float(extraction_weights(obs, act, critics, ref, SafeOfflineConfig()).mean())

    assert mean_weight(doomed) < 0.4 * mean_weight(task)  # measured: 1.48 vs 5.47


def test_the_extracted_policy_reaches_the_goal_without_failing(extracted) -> None:
    """Trained on data that is mostly failing episodes (300 failure demos against 30 task demos)."""
    policy, stats, _, _ = extracted
    env = BoundedPointMassEnv()
    failures = successes = 0
    for seed in range(10):
        obs, _ = env.reset(seed=100 + seed)
        while True:
            obs, _, terminated, truncated, info = env.step(policy.act(obs, deterministic=True)[0])
            if terminated or truncated:
                failures += bool(info["ir_failure"])
                successes += bool(info["success"])
                break
    assert failures == 0 and successes >= 8
    assert stats["penalty"] > SafeOfflineConfig().penalty_init and stats["multiplier"] >= 0.0
