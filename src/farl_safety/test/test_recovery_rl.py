"""Recovery-RL's Q-risk critic (the Rec-RL ablation): the risk-aware backup against hand-computed
targets, its fixed point on a tiny chain, failure ranking on the point mass, and persistence."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.distributions import Normal

from farl_core.spec import SpecError, TaskSpec
from farl_core.transitions import DataError, Transitions
from farl_policy.gaussian import GaussianPolicy
from farl_safety.calibration import calibrate, critic_scores, failure_within_horizon
from farl_safety.recovery_rl import QRiskConfig, QRiskCritic, train_q_risk
from farl_safety.shield import Shield, ShieldConfig
from farl_sim.point_mass import SPEC as POINT_MASS
from farl_sim.point_mass import demonstrations, expert_action

TOY = TaskSpec(name="Chain", observation_names=("s", "k"), action_names=("a",), action_low=(-1.0,),
               action_high=(1.0,))


@dataclass
class FixedPolicy:
    """pi(.|s) = N(f(s), std): a stand-in task policy for the backup's next action."""

    fn: object
    std: float
    spec: TaskSpec

    def __call__(self, obs: torch.Tensor) -> Normal:
        mean = torch.as_tensor(self.fn(obs), dtype=torch.float32)
        return Normal(mean, torch.full_like(mean, self.std))


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def plant_constant_heads(twin, first: float, second: float) -> None:
    """Make the twin's heads output constant probabilities (sigmoid of the last bias)."""
    with torch.no_grad():
        for head, p in zip(twin.heads, (first, second), strict=True):
            head[-1].weight.zero_()
            head[-1].bias.fill_(logit(p))


def test_backup_matches_hand_computed_targets_and_stops_at_failure_and_termination() -> None:
    critic = QRiskCritic(TOY, QRiskConfig(gamma_safe=0.5, hidden=(4,)))
    plant_constant_heads(critic.q_target, 0.6, 0.8)  # pessimistic (max) bootstrap: 0.8
    plant_constant_heads(critic.q, 0.1, 0.1)         # the online twin must not be used
    cost = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0])
    terminated = torch.tensor([0.0, 1.0, 1.0, 0.0, 0.0])
    #   safe step: 0 + 1 * 1 * 0.5 * 0.8; failure (c = 1, ends the episode): 1; success end: 0;
    #   c = 1 without a termination flag still stops at 1; truncation-like row bootstraps.
    target = critic.bellman_target(cost, torch.zeros(5, 2), torch.full((5, 1), 7.0), terminated)
    torch.testing.assert_close(target, torch.tensor([0.4, 1.0, 0.0, 1.0, 0.4]))
    # The shield reads the online twin's maximum.
    torch.testing.assert_close(critic.risk(torch.zeros(2, 2), torch.zeros(2, 1)), torch.tensor([0.1, 0.1]))


def chain() -> Transitions:
    """Episode A: s = 0 -> 1 -> 2, failing on the step from 2; episode B: s = 10 -> 11, succeeding."""
    obs = np.array([[0, 0], [1, 0], [2, 0], [10, 1], [11, 1]], np.float32)
    next_obs = np.array([[1, 0], [2, 0], [3, 0], [11, 1], [12, 1]], np.float32)
    return Transitions(obs=obs, act=np.zeros((5, 1), np.float32), rew=np.zeros(5, np.float32), next_obs=next_obs,
                       terminated=np.array([0, 0, 1, 0, 1], bool), truncated=np.zeros(5, bool),
                       cost=np.array([0, 0, 1, 0, 0], np.float32))


def test_training_reaches_the_risk_fixed_point_on_a_chain() -> None:
    policy = FixedPolicy(lambda obs: torch.zeros(obs.shape[0], 1), 1e-3, TOY)
    config = QRiskConfig(gamma_safe=0.5, hidden=(32, 32), target_tau=0.05, lr=1e-2, batch_size=32, steps=1500)
    critic = train_q_risk(chain(), TOY, policy, config, seed=0)
    risk = critic.risk(torch.as_tensor(chain().obs), torch.zeros(5, 1))
    # Q_risk = gamma^(steps to the failure) on the failing episode, 0 on the succeeding one.
    torch.testing.assert_close(risk, torch.tensor([0.25, 0.5, 1.0, 0.0, 0.0]), atol=0.03, rtol=0)


def test_training_refuses_data_without_failures() -> None:
    data = chain()
    data.cost[:] = 0.0
    with pytest.raises(DataError, match="no failure"):
        train_q_risk(data, TOY, FixedPolicy(lambda obs: torch.zeros(obs.shape[0], 1), 0.1, TOY))


@pytest.fixture(scope="module")
def point_mass_critic() -> QRiskCritic:
    torch.set_num_threads(1)
    data = Transitions.concat([demonstrations("task", 30, 0), demonstrations("failure", 300, 2)])
    expert = FixedPolicy(lambda obs: expert_action(obs.numpy()), 0.3, POINT_MASS)
    config = QRiskConfig(hidden=(64, 64), target_tau=0.005, steps=1500)
    return train_q_risk(data, POINT_MASS, expert, config, seed=0)


def test_q_risk_ranks_held_out_boundary_failures(point_mass_critic: QRiskCritic) -> None:
    held_out = demonstrations("failure", 100, 3)
    report = calibrate(point_mass_critic, held_out, target_recall=0.9, horizon=3)
    assert report.auroc > 0.85  # ~0.93 observed; the world-model critic scores ~0.95
    assert report.recall >= 0.9 and report.n_pos > 50
    # Scores are discounted failure probabilities, and failing pairs score higher on average.
    scores = critic_scores(point_mass_critic, held_out)
    labels = failure_within_horizon(held_out, 3)
    assert scores.min() >= 0.0 and scores.max() <= 1.0
    assert scores[labels].mean() > 3 * scores[~labels].mean()
    with pytest.raises(ValueError, match="no horizon"):
        calibrate(point_mass_critic, held_out)


def test_checkpoint_round_trip_is_bit_exact_and_checks_the_spec(point_mass_critic: QRiskCritic,
                                                                tmp_path: Path) -> None:
    point_mass_critic.save(tmp_path / "q_risk")
    loaded = QRiskCritic.load(tmp_path / "q_risk", spec=POINT_MASS)
    assert loaded.config == point_mass_critic.config
    for name, tensor in point_mass_critic.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    obs, act = torch.randn(64, 4), torch.rand(64, 2) * 2 - 1
    assert torch.equal(loaded.risk(obs, act), point_mass_critic.risk(obs, act))
    with pytest.raises(SpecError, match="different task spec"):
        QRiskCritic.load(tmp_path / "q_risk", spec=TOY)


def test_q_risk_critic_drives_the_shield(point_mass_critic: QRiskCritic) -> None:
    torch.manual_seed(0)
    recovery = GaussianPolicy(POINT_MASS)
    shield = Shield(point_mass_critic, recovery, ShieldConfig(eps_safe=0.3))
    # Centre of the corridor, at rest, vs. at the wall heading out of it.
    obs = np.array([[-0.5, 0.0, 0.0, 0.0], [-0.5, 0.21, 0.0, 0.5]], np.float32)
    proposed = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    executed, verdicts = shield.filter(obs, proposed)
    assert [v.overridden for v in verdicts] == [False, True]
    np.testing.assert_array_equal(executed[0], proposed[0])
    np.testing.assert_allclose(executed[1], recovery.mean(torch.as_tensor(obs[1:]))[0].detach().numpy())
