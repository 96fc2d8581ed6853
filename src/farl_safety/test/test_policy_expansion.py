"""FOSP's safe policy expansion on planted critics: the constraint decides first, the reward
critic's softmax second, and the verdicts say which policy acted."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from farl_core.spec import SpecError, TaskSpec
from farl_policy.critics import TwinQ
from farl_policy.gaussian import GaussianPolicy, PolicyConfig
from farl_safety.policy_expansion import PolicyExpansion, PolicyExpansionConfig
from farl_safety.reachability import ReachabilityConfig, ReachabilityCritic

LINE = TaskSpec(name="Line", observation_names=("x",), action_names=("a",), action_low=(-1.0,), action_high=(1.0,))
OFFLINE_ACTION = -0.5


class PlantedQ(TwinQ):
    """Q(s, a) = slope * a: with slope > 0 the larger action is worth more."""

    def __init__(self, slope: float) -> None:
        super().__init__(LINE, (4,))
        self.slope = slope

    def both(self, obs: torch.Tensor, act: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        value = self.slope * act[..., 0]
        return value, value


class PlantedReachability(ReachabilityCritic):
    """Q_ref(s, a) = 1 for actions above `unsafe_above`, 0.1 otherwise; threshold 0.5."""

    def __init__(self, unsafe_above: float) -> None:
        super().__init__(LINE, ReachabilityConfig(feasible=0.5, hidden=(4,)))
        self.unsafe_above = unsafe_above

    def q_value(self, obs: torch.Tensor, act: torch.Tensor, target: bool = False) -> torch.Tensor:
        return torch.where(act[..., 0] > self.unsafe_above, 1.0, 0.1)


def offline_policy() -> GaussianPolicy:
    """A policy whose mean action is OFFLINE_ACTION everywhere."""
    policy = GaussianPolicy(LINE, PolicyConfig(hidden=(4,)))
    with torch.no_grad():
        policy.body[-1].weight.zero_()
        policy.body[-1].bias.fill_(float(np.arctanh(OFFLINE_ACTION)))
    return policy


def expansion(slope: float, unsafe_above: float, temperature: float = 5.0) -> PolicyExpansion:
    return PolicyExpansion(offline_policy(), PlantedQ(slope), PlantedReachability(unsafe_above),
                           PolicyExpansionConfig(inverse_temperature=temperature), seed=0)


OBS = np.zeros((200, 1), dtype=np.float32)


def test_the_better_feasible_action_is_executed_almost_always() -> None:
    executed, verdicts = expansion(slope=10.0, unsafe_above=2.0).filter(OBS, np.full((200, 1), 0.5, np.float32))
    chose_online = np.isclose(executed[:, 0], 0.5)
    assert chose_online.mean() > 0.99  # Q 5 vs -5 at inverse temperature 5
    assert all(v.source == ("task" if c else "offline") and v.overridden != c
               for v, c in zip(verdicts, chose_online, strict=True))
    executed, _ = expansion(slope=-10.0, unsafe_above=2.0).filter(OBS, np.full((200, 1), 0.5, np.float32))
    assert np.isclose(executed[:, 0], OFFLINE_ACTION).mean() > 0.99


def test_close_values_are_sampled_not_maximised() -> None:
    executed, _ = expansion(slope=0.1, unsafe_above=2.0).filter(OBS, np.full((200, 1), 0.5, np.float32))
    share = np.isclose(executed[:, 0], 0.5).mean()  # softmax(5 * [0.05, -0.05]): 0.62 online
    assert 0.5 < share < 0.75


def test_an_infeasible_action_is_never_chosen_while_a_feasible_one_exists() -> None:
    # The online proposal 0.5 is worth far more but would reach a failure; the offline -0.5 is feasible.
    executed, verdicts = expansion(slope=100.0, unsafe_above=0.0).filter(OBS, np.full((200, 1), 0.5, np.float32))
    assert np.allclose(executed[:, 0], OFFLINE_ACTION)
    assert all(v.overridden and v.risk == 1.0 and v.threshold == 0.5 for v in verdicts)


def test_when_neither_is_feasible_the_less_reaching_one_runs() -> None:
    class Graded(PlantedReachability):
        def q_value(self, obs: torch.Tensor, act: torch.Tensor, target: bool = False) -> torch.Tensor:
            return 0.8 + 0.1 * act[..., 0]  # both above 0.5; the smaller action reaches a failure less

    chooser = PolicyExpansion(offline_policy(), PlantedQ(100.0), Graded(0.0), seed=0)
    executed, _ = chooser.filter(OBS[:5], np.full((5, 1), 0.9, np.float32))
    assert np.allclose(executed[:, 0], OFFLINE_ACTION)
    executed, _ = chooser.filter(OBS[:5], np.full((5, 1), -0.9, np.float32))
    assert np.allclose(executed[:, 0], -0.9)


def test_the_offline_policy_stays_frozen_and_inputs_are_checked() -> None:
    chooser = expansion(slope=1.0, unsafe_above=2.0)
    assert not any(p.requires_grad for p in chooser.offline.parameters())
    assert chooser.update_with == "own"  # the online policy learns from its own executed steps only
    with pytest.raises(SpecError):
        chooser.filter(np.array([[np.nan]], dtype=np.float32), np.zeros((1, 1), np.float32))
    other = TaskSpec(name="Other", observation_names=("x",), action_names=("a",), action_low=(-1.0,),
                     action_high=(1.0,))
    with pytest.raises(SpecError):
        PolicyExpansion(GaussianPolicy(other, PolicyConfig(hidden=(4,))), PlantedQ(1.0), PlantedReachability(0.0))
