"""PPO's learn mask (FOSP's `update_with: own`): rows another policy acted on train the value
function only, and a buffer whose rows are all learnable updates exactly as before the mask."""

from __future__ import annotations

import copy

import numpy as np
import torch

from farl_core.spec import TaskSpec
from farl_policy.critics import ValueFunction
from farl_policy.gaussian import GaussianPolicy, PolicyConfig
from farl_policy.ppo import PPO, PPOConfig, RolloutBuffer

SPEC = TaskSpec(name="Line", observation_names=("x", "v"), action_names=("a",), action_low=(-1.0,),
                action_high=(1.0,))
CONFIG = PPOConfig(rollout_steps=64, minibatch_size=16, epochs=2)


def filled(learn: np.ndarray | None) -> RolloutBuffer:
    rng = np.random.default_rng(0)
    buffer = RolloutBuffer()
    for t in range(32):
        buffer.add(obs=rng.normal(size=(2, 2)).astype(np.float32), act=rng.normal(size=(2, 1)).astype(np.float32),
                   log_prob=np.full(2, -1.0, np.float32), rew=rng.normal(size=2).astype(np.float32),
                   value=np.zeros(2, np.float32), next_value=np.zeros(2, np.float32), terminated=np.zeros(2, bool),
                   truncated=np.full(2, t == 31), cost=np.zeros(2, np.float32),
                   learn=None if learn is None else learn[t])
    return buffer


def learner() -> PPO:
    torch.manual_seed(0)
    return PPO(GaussianPolicy(SPEC, PolicyConfig(hidden=(8,))), ValueFunction(SPEC, (8,)), CONFIG, 4, seed=0)


def weights(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def test_rows_another_policy_acted_on_move_the_value_function_only() -> None:
    ppo = learner()
    policy_before, value_before = weights(ppo.policy), weights(ppo.value)
    stats = ppo.update(filled(np.zeros((32, 2), bool)))
    assert all(torch.equal(a, b) for a, b in zip(policy_before, weights(ppo.policy), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(value_before, weights(ppo.value), strict=True))
    assert np.isnan(stats["policy_loss"]) and np.isfinite(stats["value_loss"])


def test_all_learnable_rows_update_exactly_as_an_unmasked_buffer() -> None:
    unmasked, masked = learner(), learner()
    unmasked.update(filled(None))
    masked.update(filled(np.ones((32, 2), bool)))
    assert all(torch.equal(a, b) for a, b in zip(weights(unmasked.policy), weights(masked.policy), strict=True))


def test_a_partial_mask_trains_the_policy_on_the_marked_rows_alone() -> None:
    rng = np.random.default_rng(1)
    learn = rng.random((32, 2)) < 0.5
    ppo = learner()
    reference = copy.deepcopy(ppo)
    ppo.update(filled(learn))
    reference.update(filled(np.ones((32, 2), bool)))
    assert not all(torch.equal(a, b) for a, b in zip(weights(ppo.policy), weights(reference.policy), strict=True))
