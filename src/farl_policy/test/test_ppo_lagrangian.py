"""PPO-Lagrangian (the Table I baseline): the multiplier follows the episode cost against the
budget, the policy step moves probability away from costly actions, and the online fine-tuner
runs it end to end on the point mass."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from farl.online import OnlineFinetuner, run_online
from farl_policy.critics import ValueFunction
from farl_policy.gaussian import GaussianPolicy, PolicyConfig
from farl_policy.ppo import PPOConfig
from farl_policy.ppo_lagrangian import CostRolloutBuffer, LagrangianConfig, PPOLagrangian
from farl_sim.point_mass import SPEC, BoundedPointMassEnv

SMALL_PPO = PPOConfig(epochs=1, minibatch_size=64, rollout_steps=16, lr_decay=False)


def learner(lagrangian: LagrangianConfig, config: PPOConfig = SMALL_PPO) -> PPOLagrangian:
    torch.manual_seed(0)
    policy = GaussianPolicy(SPEC, PolicyConfig(hidden=(16,)))
    return PPOLagrangian(policy, ValueFunction(SPEC, (16,)), config, total_updates=100, lagrangian=lagrangian)


def rollout(algo: PPOLagrangian, actions: np.ndarray, cost: np.ndarray, done: np.ndarray) -> CostRolloutBuffer:
    """A [T, N] rollout at obs = 0 with the given actions [T, N, 2], costs and episode ends."""
    buffer = CostRolloutBuffer()
    obs = np.zeros((actions.shape[1], SPEC.obs_dim), np.float32)
    for t in range(len(actions)):
        with torch.no_grad():
            log_prob = algo.policy.log_prob(torch.as_tensor(obs), torch.as_tensor(actions[t])).numpy()
        zeros = np.zeros(actions.shape[1], np.float32)
        buffer.add(obs=obs, act=actions[t], log_prob=log_prob, rew=zeros, value=zeros, next_value=zeros,
                   terminated=done[t], truncated=np.zeros_like(done[t]), cost=cost[t], next_obs=obs)
    return buffer


def episodes(n_steps: int, episode_length: int, failing: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One stream of episodes of `episode_length` steps, each ending in a failure or not."""
    done = (np.arange(n_steps) % episode_length == episode_length - 1)[:, None]
    cost = (done & failing).astype(np.float32)
    return np.zeros((n_steps, 1, 2), np.float32), cost, done


def test_lambda_rises_over_budget_and_falls_to_zero_under_it() -> None:
    # A budget of half the episodes, so that over- and under-spending are equally far from it.
    algo = learner(LagrangianConfig(lambda_init=0.001, lambda_lr=0.035, cost_limit=0.5))
    stats = algo.update(rollout(algo, *episodes(16, 4, failing=True)))  # every episode fails: J_c = 1
    assert stats["episode_cost"] == 1.0 and stats["episodes"] == 4.0
    assert stats["lambda"] == pytest.approx(0.001 + 0.035, rel=1e-3)  # Adam's first step is lr-sized
    rising = [algo.update(rollout(algo, *episodes(16, 4, failing=True)))["lambda"] for _ in range(4)]
    assert rising == sorted(rising) and rising[-1] > 0.15
    falling = [algo.update(rollout(algo, *episodes(16, 4, failing=False)))["lambda"] for _ in range(20)]
    assert falling[10] < rising[-1]  # after Adam's momentum has turned
    assert falling[-1] == 0.0 and min(falling) >= 0.0  # clipped at 0, never negative


def test_episode_cost_counts_whole_episodes_across_rollouts() -> None:
    algo = learner(LagrangianConfig())
    done = np.zeros((8, 1), bool)
    cost = np.zeros((8, 1), np.float32)
    cost[2] = 1.0  # a cost early in an episode that only ends in the next rollout
    stats = algo.update(rollout(algo, np.zeros((8, 1, 2), np.float32), cost, done))
    assert stats["episodes"] == 0.0 and np.isnan(stats["episode_cost"])
    assert algo.multiplier.value == pytest.approx(0.001)  # no finished episode: lambda untouched
    done[3] = True
    stats = algo.update(rollout(algo, np.zeros((8, 1, 2), np.float32), np.zeros((8, 1), np.float32), done))
    assert stats["episodes"] == 1.0 and stats["episode_cost"] == 1.0


def test_policy_step_moves_probability_away_from_the_costly_action() -> None:
    algo = learner(LagrangianConfig(lambda_init=1.0, cost_limit=0.0), PPOConfig(
        epochs=4, minibatch_size=64, rollout_steps=32, lr=1e-2, lr_decay=False))
    costly, cheap = np.array([0.5, 0.0], np.float32), np.array([-0.5, 0.0], np.float32)
    # Two streams of one-step episodes with equal (zero) reward: stream 0 takes the costly action.
    actions = np.stack([np.tile(costly, (16, 1)), np.tile(cheap, (16, 1))], axis=1)
    cost = np.tile(np.array([1.0, 0.0], np.float32), (16, 1))
    done = np.ones((16, 2), bool)
    obs = torch.zeros(1, SPEC.obs_dim)

    def preference() -> float:
        with torch.no_grad():
            return float(algo.policy.log_prob(obs, torch.as_tensor(costly)[None])
                         - algo.policy.log_prob(obs, torch.as_tensor(cheap)[None]))

    before = preference()
    stats = algo.update(rollout(algo, actions, cost, done))
    assert stats["lambda"] > 1.0  # J_c = 0.5 > 0
    assert preference() < before - 0.1
    assert np.isfinite(stats["cost_value_loss"])


def test_online_finetuner_runs_ppo_lagrangian_on_the_point_mass() -> None:
    config = PPOConfig(rollout_steps=128, minibatch_size=64, epochs=2, exploration_log_std=0.5)
    algo = learner(LagrangianConfig(), config)
    tuner = OnlineFinetuner(algo.policy, algo.value, config, total_updates=3, seed=0, algorithm=algo)
    result = run_online(BoundedPointMassEnv, tuner, total_steps=384, num_envs=2, seed=0)
    assert len(result.updates) == 3
    failure_rate = np.mean([e.ir_failure for e in result.episodes[:10]])
    assert failure_rate > 0.025 and result.updates[0]["lambda"] > 0.001  # over budget: lambda rises
    assert all(np.isfinite(u["cost_value_loss"]) for u in result.updates)
    with pytest.raises(ValueError, match="same policy"):
        OnlineFinetuner(GaussianPolicy(SPEC), algo.value, config, total_updates=3, algorithm=algo)
