"""What PPO learns from a step the shield replaced: the two `update_with` variants."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from farl.online import OnlineFinetuner
from farl_policy.critics import ValueFunction
from farl_policy.gaussian import GaussianPolicy
from farl_policy.ppo import PPOConfig
from farl_safety.safety_critic import SafetyCritic
from farl_safety.shield import Shield, ShieldConfig
from farl_safety.world_model import WorldModel, WorldModelConfig
from farl_sim.point_mass import SPEC


def finetuner(update_with: str, eps_safe: float) -> OnlineFinetuner:
    torch.manual_seed(0)
    policy, recovery = GaussianPolicy(SPEC), GaussianPolicy(SPEC)
    with torch.no_grad():  # make the recovery action unmistakable: its mean is the box corner
        recovery.body[-1].bias.fill_(50.0)
    critic = SafetyCritic(WorldModel(SPEC, WorldModelConfig(latent_dim=4, hidden=(8,))), policy)
    shield = Shield(critic, recovery, ShieldConfig(eps_safe=eps_safe, update_with=update_with))
    return OnlineFinetuner(policy, ValueFunction(SPEC, (8,)), PPOConfig(rollout_steps=4), total_updates=1,
                           shield=shield, seed=0)


def stored_step(tuner: OnlineFinetuner, obs: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    executed, _ = tuner.act(obs)
    pending = tuner._pending
    assert pending is not None
    return executed, pending


OBS = np.zeros((3, SPEC.obs_dim), dtype=np.float32)


def test_executed_variant_trains_on_the_recovery_action_with_its_task_policy_log_prob() -> None:
    tuner = finetuner("executed", eps_safe=1e-6)  # any positive risk overrides
    executed, stored = stored_step(tuner, OBS)
    np.testing.assert_allclose(executed, np.tile(SPEC.action_high, (3, 1)), atol=1e-5)
    np.testing.assert_array_equal(stored["act"], executed)
    expected = tuner.policy.log_prob(torch.as_tensor(OBS), torch.as_tensor(executed)).detach().numpy()
    np.testing.assert_allclose(stored["log_prob"], expected, rtol=1e-6)


def test_proposed_variant_relabels_with_the_task_policy_proposal() -> None:
    tuner = finetuner("proposed", eps_safe=1e-6)
    generator_state = tuner.generator.get_state()
    executed, stored = stored_step(tuner, OBS)
    tuner.generator.set_state(generator_state)
    proposed, proposed_log_prob = tuner.policy.act(OBS, generator=tuner.generator)
    np.testing.assert_allclose(executed, np.tile(SPEC.action_high, (3, 1)), atol=1e-5)  # robot ran recovery
    np.testing.assert_array_equal(stored["act"], proposed)                            # PPO sees the proposal
    np.testing.assert_array_equal(stored["log_prob"], proposed_log_prob)
    assert not np.allclose(stored["act"], executed)


@pytest.mark.parametrize("update_with", ["executed", "proposed"])
def test_unreplaced_steps_are_stored_as_proposed_in_both_variants(update_with: str) -> None:
    tuner = finetuner(update_with, eps_safe=1e6)  # never overrides
    generator_state = tuner.generator.get_state()
    executed, stored = stored_step(tuner, OBS)
    tuner.generator.set_state(generator_state)
    proposed, _ = tuner.policy.act(OBS, generator=tuner.generator)
    np.testing.assert_array_equal(executed, proposed)
    np.testing.assert_allclose(stored["act"], proposed)
