"""FOSP's reachability estimation function: the max-backup against hand-computed targets, the
in-sample lower expectile, failure ranking on the point mass, and persistence."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from farl_core.spec import SpecError, TaskSpec
from farl_core.transitions import DataError, Transitions
from farl_safety.calibration import auroc, calibrate, failure_within_horizon
from farl_safety.reachability import ReachabilityConfig, ReachabilityCritic, train_reachability
from farl_sim.point_mass import SPEC as POINT_MASS
from farl_sim.point_mass import demonstrations

TOY = TaskSpec(name="Chain", observation_names=("s", "k"), action_names=("a",), action_low=(-1.0,),
               action_high=(1.0,))


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def plant_constant(net: torch.nn.Sequential, p: float) -> None:
    """Make an MLP whose output goes through a sigmoid output the constant probability p."""
    with torch.no_grad():
        net[-1].weight.zero_()
        net[-1].bias.fill_(logit(p))


def test_backup_is_the_max_of_the_failure_and_the_discounted_next_value() -> None:
    critic = ReachabilityCritic(TOY, ReachabilityConfig(discount=0.9, hidden=(4,)))
    plant_constant(critic.v.body, 0.5)
    cost = torch.tensor([0.0, 1.0, 0.0, 1.0])
    terminated = torch.tensor([0.0, 1.0, 1.0, 0.0])
    #   safe step: max(0, 0.9 * 0.5); failure: 1; a success end: 0; a failure never counts less than 1
    target = critic.bellman_target(cost, torch.zeros(4, 2), terminated)
    assert torch.allclose(target, torch.tensor([0.45, 1.0, 0.0, 1.0]))


def test_value_is_a_lower_expectile_of_q_over_the_data_actions() -> None:
    """Two data actions in one state, one safe (Q 0.1) and one failing (Q 0.9): V_ref approaches the
    safest action's value (in-sample minimum), not their mean 0.5."""
    critic = ReachabilityCritic(TOY, ReachabilityConfig(expectile=0.05, hidden=(8,)))
    obs = torch.zeros(2, 2)
    act = torch.tensor([[-0.5], [0.5]])
    planted = torch.tensor([0.1, 0.9])  # the target twin's Q_ref of the two data actions
    critic.q_value = lambda o, a, target=False: planted  # type: ignore[method-assign]
    optimiser = torch.optim.Adam(critic.v.parameters(), lr=0.05)
    for _ in range(400):
        value_loss, _ = critic.losses({"obs": obs, "act": act, "cost": torch.zeros(2), "next_obs": obs,
                                       "terminated": torch.zeros(2)})
        optimiser.zero_grad()
        value_loss.backward()
        optimiser.step()
    assert 0.1 < critic.value(obs[:1]).item() < 0.25


@pytest.fixture(scope="module")
def trained() -> tuple[ReachabilityCritic, Transitions]:
    torch.set_num_threads(1)
    data = Transitions.concat([demonstrations("task", 30, 0), demonstrations("recovery", 120, 1),
                               demonstrations("failure", 300, 2)])
    critic = train_reachability(data, POINT_MASS, ReachabilityConfig(hidden=(64, 64), steps=3000), seed=0)
    return critic, demonstrations("failure", 100, 3)


def test_reachability_separates_states_that_will_fail_from_those_that_will_not(trained) -> None:
    critic, heldout = trained
    report = calibrate(critic, heldout, target_recall=0.7, horizon=3)  # Q_ref as a shield's risk score
    assert report.auroc >= 0.85
    labels = failure_within_horizon(heldout, 3)
    value = critic.value(torch.as_tensor(heldout.obs)).detach().numpy()
    assert auroc(value, labels) >= 0.75  # V_ref too, without the action
    assert float(value[labels].mean()) > 5 * float(value[~labels].mean())  # measured: 0.157 vs 0.023
    assert np.all((value >= 0.0) & (value <= 1.0))


def test_save_load_round_trip_and_a_clear_error_for_another_task(trained, tmp_path: Path) -> None:
    critic, heldout = trained
    critic.save(tmp_path / "ref")
    loaded = ReachabilityCritic.load(tmp_path / "ref", spec=POINT_MASS)
    obs, act = torch.as_tensor(heldout.obs[:50]), torch.as_tensor(heldout.act[:50])
    assert torch.equal(loaded.risk(obs, act), critic.risk(obs, act))
    assert loaded.config == critic.config
    with pytest.raises(SpecError):
        ReachabilityCritic.load(tmp_path / "ref", spec=TOY)


def test_data_without_a_failure_is_refused() -> None:
    with pytest.raises(DataError, match="no failure"):
        train_reachability(demonstrations("recovery", 5, 0), POINT_MASS, ReachabilityConfig(steps=1))
