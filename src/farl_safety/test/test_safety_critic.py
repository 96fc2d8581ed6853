"""Eq. 1, the failure labels, AUROC and eps_safe selection, each against hand-computed values."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from farl_core.spec import SpecError, TaskSpec
from farl_core.transitions import DataError, Transitions
from farl_policy.gaussian import GaussianPolicy
from farl_safety.calibration import alarm_lead_times, auroc, calibrate, failure_within_horizon
from farl_safety.safety_critic import SafetyCritic, SafetyCriticConfig
from farl_safety.shield import Shield, ShieldConfig
from farl_safety.world_model import WorldModel, WorldModelConfig

SPEC = TaskSpec(name="Toy", observation_names=("x", "y"), action_names=("ax",),
                action_low=(-1.0,), action_high=(1.0,))
PROBS = [0.1, 0.2, 0.4, 0.8]  # P(C = 1) at imagined steps 0..3 when the action is positive


class Fn(nn.Module):
    """Wrap a function as a module, to plant known components into a WorldModel."""

    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


def step_counter_model() -> WorldModel:
    """A world model whose latent counts steps and whose constraint probability is PROBS[step]
    for an action in (0, 1] and 0 otherwise (so an unclipped action of 7 would read as safe)."""
    model = WorldModel(SPEC, WorldModelConfig(latent_dim=1, hidden=(4,)))
    logits = torch.tensor([math.log(p / (1 - p)) for p in PROBS])
    model.encoder = Fn(lambda obs: torch.zeros(obs.shape[:-1] + (1,)))
    model.dynamics = Fn(lambda za: za[..., :1] + 1.0)
    model.decoder = Fn(lambda z: torch.zeros(z.shape[:-1] + (2,)))
    model.constraint_head = Fn(lambda za: torch.where(
        (za[..., 1:] > 0) & (za[..., 1:] <= 1), logits[za[..., :1].round().long().clamp(max=3)], torch.tensor(-1e4)))
    return model


@dataclass
class ConstantPolicy:
    """Task policy stand-in that always proposes the same action."""

    value: float
    spec: TaskSpec = SPEC

    def mean(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.full(obs.shape[:-1] + (1,), self.value)


def critic(policy_action: float, horizon: int = 3, gamma: float = 0.5) -> SafetyCritic:
    return SafetyCritic(step_counter_model(), ConstantPolicy(policy_action),
                        SafetyCriticConfig(horizon=horizon, gamma_risk=gamma))


def test_eq1_sums_discounted_probabilities_over_h_plus_one_steps() -> None:
    obs = torch.zeros(3, 2)
    act = torch.tensor([[1.0], [-1.0], [1.0]])
    # Policy acts positively: 0.1 + 0.5*0.2 + 0.25*0.4 + 0.125*0.8 = 0.4, minus the first
    # term when the given action is negative (probability 0 at step t).
    torch.testing.assert_close(critic(1.0).risk(obs, act), torch.tensor([0.4, 0.3, 0.4]))
    # A negative policy action zeroes every imagined step: only P(C(s_t, a_t)) = 0.1 remains.
    torch.testing.assert_close(critic(-1.0).risk(obs, act), torch.tensor([0.1, 0.0, 0.1]))
    # H = 0 is the one-step constraint probability; H = 2 drops the 0.125 * 0.8 term.
    torch.testing.assert_close(critic(1.0, horizon=0).risk(obs[:1], act[:1]), torch.tensor([0.1]))
    torch.testing.assert_close(critic(1.0, horizon=2).risk(obs[:1], act[:1]), torch.tensor([0.3]))


def test_given_action_is_clipped_to_the_action_box() -> None:
    model_critic = critic(1.0)
    # The head sees scaled actions; an out-of-box action must act like the box edge.
    assert model_critic.risk(torch.zeros(1, 2), torch.tensor([[7.0]])).item() == pytest.approx(0.4)
    assert model_critic.risk(torch.zeros(1, 2), torch.tensor([[-7.0]])).item() == pytest.approx(0.3)


def test_numpy_api_rejects_nan_and_batches() -> None:
    model_critic = critic(1.0)
    assert model_critic.risk_np(np.zeros(2), np.ones(1)) == pytest.approx(0.4)
    with pytest.raises(SpecError, match="NaN/inf in 'y'"):
        model_critic.risk_np(np.array([0.0, np.nan]), np.ones(1))
    with pytest.raises(SpecError, match="NaN/inf in 'ax'"):
        model_critic.risk_np(np.zeros(2), np.array([np.inf]))
    with pytest.raises(SpecError, match="one observation"):
        model_critic.risk_np(np.zeros((2, 2)), np.ones((2, 1)))


def test_shield_overrides_exactly_above_eps_safe() -> None:
    gate = SafetyCritic(step_counter_model(), ConstantPolicy(1.0), SafetyCriticConfig(horizon=3, gamma_risk=0.5))
    recovery = GaussianPolicy(gate.spec)
    shield = Shield(gate, recovery, ShieldConfig(eps_safe=0.35))
    executed, verdicts = shield.filter(np.zeros((2, 2), dtype=np.float32), np.array([[-1.0], [1.0]], dtype=np.float32))
    assert [v.overridden for v in verdicts] == [False, True]  # C_H = 0.3 and 0.4
    assert [v.source for v in verdicts] == ["task", "recovery"]
    assert verdicts[1].risk == pytest.approx(0.4) and verdicts[1].threshold == 0.35
    assert executed[0, 0] == -1.0
    expected = recovery.mean(torch.zeros(1, 2))[0, 0].item()
    assert executed[1, 0] == pytest.approx(expected)


def test_gated_shield_swaps_the_recovery_in_only_where_it_lowers_the_risk() -> None:
    obs, proposed = np.zeros((2, 2), dtype=np.float32), np.array([[-1.0], [1.0]], dtype=np.float32)
    gated = ShieldConfig(eps_safe=0.35, recovery_must_lower_risk=True)
    # C_H of the proposed 1.0 is 0.4; a recovery action of -1.0 scores 0.3 (its first step is safe).
    executed, verdicts = Shield(critic(1.0), ConstantPolicy(-1.0), gated).filter(obs, proposed)
    assert [v.overridden for v in verdicts] == [False, True] and executed[:, 0].tolist() == [-1.0, -1.0]
    # A recovery action of 0.5 scores 0.4 too: no lower, so the task keeps control.
    executed, verdicts = Shield(critic(1.0), ConstantPolicy(0.5), gated).filter(obs, proposed)
    assert [v.overridden for v in verdicts] == [False, False] and executed[:, 0].tolist() == [-1.0, 1.0]
    assert verdicts[1].risk == pytest.approx(0.4) and verdicts[1].source == "task"
    # Ungated, the same futile recovery is swapped in.
    executed, verdicts = Shield(critic(1.0), ConstantPolicy(0.5), ShieldConfig(eps_safe=0.35)).filter(obs, proposed)
    assert [v.overridden for v in verdicts] == [False, True] and executed[1, 0] == 0.5


def test_critic_refuses_a_policy_for_another_task() -> None:
    other = TaskSpec(name="Other", observation_names=("x", "y"), action_names=("ax",),
                     action_low=(-1.0,), action_high=(1.0,))
    with pytest.raises(SpecError, match="different task spec"):
        SafetyCritic(step_counter_model(), ConstantPolicy(1.0, spec=other))


def transitions(cost: list[float], done: list[bool]) -> Transitions:
    n = len(cost)
    return Transitions(obs=np.zeros((n, 2), np.float32), act=np.zeros((n, 1), np.float32),
                       rew=np.zeros(n, np.float32), next_obs=np.zeros((n, 2), np.float32),
                       terminated=np.array(done), truncated=np.zeros(n, bool),
                       cost=np.array(cost, np.float32))


def test_failure_labels_look_h_steps_ahead_within_the_episode() -> None:
    #          episode 1 (fails at row 3) | episode 2 (succeeds) | episode 3 (fails at row 8)
    data = transitions([0, 0, 0, 1, 0, 0, 0, 0, 1],
                       [0, 0, 0, 1, 0, 0, 1, 0, 1])
    expected = [0, 1, 1, 1, 0, 0, 0, 1, 1]
    np.testing.assert_array_equal(failure_within_horizon(data, 2), np.array(expected, bool))
    np.testing.assert_array_equal(failure_within_horizon(data, 0), data.cost > 0)


def test_auroc_matches_hand_computed_values() -> None:
    assert auroc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1], bool)) == pytest.approx(0.75)
    assert auroc(np.array([1.0, 2.0, 3.0]), np.array([0, 1, 1], bool)) == 1.0
    assert auroc(np.array([3.0, 2.0, 1.0]), np.array([0, 1, 1], bool)) == 0.0
    assert auroc(np.array([0.5, 0.5, 0.5, 0.5]), np.array([0, 1, 0, 1], bool)) == 0.5
    # Ties between a positive and a negative count one half: pairs (p, n) = 2 wins + 0.5 tie + 1 loss.
    assert auroc(np.array([0.2, 0.5, 0.5, 0.9]), np.array([0, 1, 0, 1], bool)) == pytest.approx(0.875)


@dataclass
class ScoreCritic:
    """Calibration stand-in: C_H is the observation's first entry."""

    spec: TaskSpec = SPEC
    config: SafetyCriticConfig = SafetyCriticConfig(horizon=0)

    def risk(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return obs[:, 0]


def test_calibration_picks_the_largest_eps_reaching_the_recall() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2], np.float32)
    cost = [1, 0, 1, 1, 0, 1, 0, 0]
    data = transitions(cost, [True] * 8)
    data.obs[:, 0] = scores
    report = calibrate(ScoreCritic(), data, target_recall=0.75)
    # 3 of 4 positives needed: flag scores >= 0.6, i.e. eps just below 0.6.
    assert report.eps_safe < 0.6 and np.float32(report.eps_safe) < np.float32(0.6)
    assert report.eps_safe > 0.5999
    assert (report.recall, report.precision, report.n_pos, report.n_neg) == (0.75, 0.75, 4, 4)
    assert (report.false_alarm, report.limited_by) == (0.25, "recall")  # 0.8 of 0.8/0.5/0.3/0.2
    assert report.auroc == pytest.approx(12 / 16)
    assert calibrate(ScoreCritic(), data, target_recall=1.0).eps_safe == pytest.approx(0.4, abs=1e-6)
    with pytest.raises(DataError, match="both are needed"):
        calibrate(ScoreCritic(), transitions([0, 0], [True, True]))


def test_lead_time_counts_steps_from_the_first_alarm_to_the_failure() -> None:
    #          episode 1 (fails at row 4)   | episode 2 (fails at row 7) | 3 (succeeds) | 4 (fails at row 12, unseen)
    data = transitions([0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 1],
                       [0, 0, 0, 0, 1, 0, 0, 1, 0, 1, 0, 0, 1])
    scores = np.array([0, 0.9, 0.2, 0.9, 0.9, 0, 0, 0.9, 0.9, 0, 0, 0, 0], np.float32)
    data.obs[:, 0] = scores
    # alarms after a failure (row 8 belongs to episode 3, which never fails) do not count
    assert alarm_lead_times(scores, data, 0.5).tolist() == [3, 0, -1]
    assert alarm_lead_times(scores, data, 0.1).tolist() == [3, 0, -1]
    assert alarm_lead_times(scores, data, 0.95).tolist() == [-1, -1, -1]
    report = calibrate(ScoreCritic(), data, target_recall=1.0, horizon=0)
    assert report.median_lead == 1.5 and report.early_alarm_share == 0.0  # leads 3 and 0; episode 4 unseen
    long = transitions([0] * 12 + [1], [0] * 12 + [1])
    long.obs[:, 0] = np.r_[np.zeros(2), np.full(11, 0.9)].astype(np.float32)
    assert calibrate(ScoreCritic(), long, target_recall=1.0, horizon=0).early_alarm_share == 1.0  # lead 10


def test_false_alarm_cap_raises_eps_safe_only_when_the_recall_would_flag_too_many_safe_pairs() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2], np.float32)
    data = transitions([1, 0, 1, 1, 0, 1, 0, 0], [True] * 8)
    data.obs[:, 0] = scores
    # Recall 1.0 flags everything above 0.4: negatives 0.8 and 0.5 of four, a false-alarm share of 0.5.
    uncapped = calibrate(ScoreCritic(), data, target_recall=1.0)
    assert (uncapped.false_alarm, uncapped.limited_by) == (0.5, "recall")
    # A cap of 0.25 allows one of the four negatives: eps_safe rises to the second-highest negative, 0.5.
    capped = calibrate(ScoreCritic(), data, target_recall=1.0, max_false_alarm=0.25)
    assert capped.eps_safe == pytest.approx(0.5, abs=1e-6)
    assert (capped.false_alarm, capped.recall, capped.precision, capped.limited_by) == (
        0.25, 0.75, 0.75, "false_alarm")
    # A cap already met by the recall's threshold changes nothing.
    assert calibrate(ScoreCritic(), data, target_recall=1.0, max_false_alarm=0.5) == uncapped
    # No false alarm at all: only scores above the highest negative (0.8) are flagged.
    strict = calibrate(ScoreCritic(), data, target_recall=1.0, max_false_alarm=0.0)
    assert (strict.false_alarm, strict.recall) == (0.0, 0.25)
    with pytest.raises(ValueError, match="max_false_alarm"):
        calibrate(ScoreCritic(), data, max_false_alarm=1.5)
