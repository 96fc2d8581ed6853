"""Offline phase (paper III.A): BC ensemble, IQL critics, dynamics OPE, Uni-O4 with Eq. 3.

Everything is trained once per module on noisy-expert point-mass demonstrations with small
networks, then judged in the real environment against the noise-free demonstrator.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np
import pytest
import torch

from farl_core.errors import FarlError
from farl_core.spec import SpecError
from farl_core.transitions import DataError, Transitions
from farl_policy.bc import BCConfig, train_bc_ensemble
from farl_policy.critics import CriticConfig, ValueCritics, expectile_loss, train_critics
from farl_policy.dynamics import DynamicsConfig, DynamicsEnsemble, train_dynamics
from farl_policy.gaussian import GaussianPolicy, PolicyConfig
from farl_policy.offline_data import OfflineTensors
from farl_policy.uni_o4 import (
    BehaviourProximalImprover,
    ModelReturnEstimator,
    OfflineConfig,
    UniO4Config,
    clipped_objective,
    improve_offline,
    train_offline_policy,
)
from farl_sim.point_mass import SPEC, BoundedPointMassEnv, demonstrations, expert_action

torch.set_num_threads(1)

EVAL_SEEDS = range(1000, 1020)   # 20 evaluation episodes, identical for every policy
GAMMA = 0.99

POLICY = PolicyConfig(hidden=(64, 64))
BC = BCConfig(ensemble_size=4, steps=800, batch_size=256, lr=1e-3)
# a faster target (tau 0.05 instead of 0.005) lets values propagate through ~30-step episodes in 1500 steps
CRITICS = CriticConfig(hidden=(64, 64), steps=1500, lr=1e-3, target_tau=0.05)
DYNAMICS = DynamicsConfig(hidden=(128, 128), steps=1500)
UNI_O4 = UniO4Config(steps=200, batch_size=256, eval_every=50, ope_horizon=60)


@dataclass
class Score:
    """Mean real-environment return of a controller, undiscounted and discounted."""

    ret: float
    discounted: float
    failures: int


def score(controller: Callable[[np.ndarray], np.ndarray]) -> Score:
    env = BoundedPointMassEnv()
    returns, discounted, failures = [], [], 0
    for seed in EVAL_SEEDS:
        obs, _ = env.reset(seed=seed)
        ret, disc, t = 0.0, 0.0, 0
        while True:
            obs, rew, term, trunc, info = env.step(controller(obs))
            ret, disc, t = ret + rew, disc + GAMMA**t * rew, t + 1
            if term or trunc:
                failures += info["ir_failure"]
                break
        returns.append(ret)
        discounted.append(disc)
    return Score(float(np.mean(returns)), float(np.mean(discounted)), failures)


def deterministic(policy: GaussianPolicy) -> Callable[[np.ndarray], np.ndarray]:
    return lambda obs: policy.act(obs, deterministic=True)[0]


@dataclass
class Trained:
    data: Transitions
    members: list[GaussianPolicy]
    critics: ValueCritics
    dynamics: DynamicsEnsemble
    improved: GaussianPolicy
    report: dict


@pytest.fixture(scope="module")
def trained() -> Trained:
    data = demonstrations("task", 30, seed=0)
    members = train_bc_ensemble(data, SPEC, POLICY, BC, seed=0)
    critics = train_critics(data, SPEC, CRITICS, seed=1)
    dynamics = train_dynamics(data, SPEC, DYNAMICS, seed=2)
    improved, report = improve_offline(members, critics, dynamics, data, UNI_O4, seed=3)
    return Trained(data, members, critics, dynamics, improved, report)


@pytest.fixture(scope="module")
def demonstrator() -> Score:
    return score(expert_action)


def copy_of(data: Transitions) -> Transitions:
    return Transitions(**{f.name: np.array(getattr(data, f.name), copy=True) for f in fields(data)})


# --- Eq. 3 and the expectile loss, on hand-computed values -----------------------------------------

def test_clipped_objective_matches_hand_computed_values_and_gradients() -> None:
    ratio = torch.tensor([1.5, 1.5, 0.5, 0.5, 1.0])
    advantage = torch.tensor([2.0, -2.0, 2.0, -2.0, 3.0])
    log_prob_behaviour = torch.tensor([-1.0, 0.3, -2.0, 0.0, 0.7])
    log_prob_new = (log_prob_behaviour + ratio.log()).requires_grad_(True)
    objective = clipped_objective(log_prob_new, log_prob_behaviour, advantage, clip_eps=0.2)
    # per sample: min(3.0, 1.2*2)=2.4 (upper clip), min(-3.0, -2.4)=-3.0 (no clip: pessimistic for A<0),
    # min(1.0, 0.8*2)=1.0 (no clip: pessimistic for A>0), min(-1.0, -1.6)=-1.6 (lower clip), 3.0 (r = 1)
    assert objective.item() == pytest.approx((2.4 - 3.0 + 1.0 - 1.6 + 3.0) / 5)
    objective.backward()
    # clipped samples carry no gradient; the others d(r A)/d log pi = r A, over the batch of 5
    expected = torch.tensor([0.0, 1.5 * -2.0, 0.5 * 2.0, 0.0, 3.0]) / 5
    torch.testing.assert_close(log_prob_new.grad, expected)


def test_clipped_objective_is_ratio_weighted_advantage_inside_the_trust_region() -> None:
    advantage = torch.tensor([1.0, -4.0])
    log_prob_behaviour = torch.zeros(2)
    log_prob_new = torch.log(torch.tensor([1.1, 0.95]))
    objective = clipped_objective(log_prob_new, log_prob_behaviour, advantage, clip_eps=0.25)
    assert objective.item() == pytest.approx((1.1 * 1.0 + 0.95 * -4.0) / 2)


def test_expectile_loss_weights_underestimates_by_tau_and_overestimates_by_one_minus_tau() -> None:
    assert expectile_loss(torch.tensor([2.0]), 0.7).item() == pytest.approx(0.7 * 4.0)
    assert expectile_loss(torch.tensor([-2.0]), 0.7).item() == pytest.approx(0.3 * 4.0)
    # its minimiser over a constant is the tau-expectile: for targets {0, 1} that is tau itself
    targets = torch.tensor([0.0, 1.0])
    grid = torch.linspace(0.0, 1.0, 1001)
    losses = torch.stack([expectile_loss(targets - v, 0.7) for v in grid])
    assert grid[losses.argmin()].item() == pytest.approx(0.7, abs=1e-3)


# --- BC ensemble --------------------------------------------------------------------------------------

def test_bc_members_reach_ninety_percent_of_the_demonstrator(trained: Trained, demonstrator: Score) -> None:
    assert demonstrator.ret > 15.0 and demonstrator.failures == 0
    for k, member in enumerate(trained.members):
        result = score(deterministic(member))
        assert result.ret >= 0.9 * demonstrator.ret, f"member {k}: {result} vs demonstrator {demonstrator}"


def test_bc_members_differ_but_share_the_data_normaliser(trained: Trained) -> None:
    obs = torch.as_tensor(trained.data.obs)
    first, *others = trained.members
    for member in others:
        torch.testing.assert_close(member.normalizer.mean, first.normalizer.mean)
        torch.testing.assert_close(member.normalizer.std, first.normalizer.std)
        assert not torch.equal(member.body[0].weight, first.body[0].weight)
    torch.testing.assert_close(first.normalizer.mean, obs.mean(0))


def test_bc_is_reproducible_for_a_seed() -> None:
    data = demonstrations("task", 3, seed=5)
    config = BCConfig(ensemble_size=1, steps=5, batch_size=32)
    a, b = (train_bc_ensemble(data, SPEC, POLICY, config, seed=7)[0] for _ in range(2))
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y), name


# --- critics and dynamics -----------------------------------------------------------------------------

def test_value_tracks_the_data_return_to_go(trained: Trained) -> None:
    data = trained.data
    returns = np.zeros(len(data), dtype=np.float32)
    for episode in data.episode_slices():
        future = 0.0
        for i in reversed(range(episode.start, episode.stop)):
            future = data.rew[i] + GAMMA * future
            returns[i] = future
    with torch.no_grad():
        value = trained.critics.value(torch.as_tensor(data.obs)).numpy()
    assert np.corrcoef(value, returns)[0, 1] > 0.9


def test_critics_round_trip_through_a_checkpoint(trained: Trained, tmp_path) -> None:
    trained.critics.save(tmp_path / "critics")
    loaded = ValueCritics.load(tmp_path / "critics", spec=SPEC)
    obs, act = torch.as_tensor(trained.data.obs[:10]), torch.as_tensor(trained.data.act[:10])
    torch.testing.assert_close(loaded.advantage(obs, act), trained.critics.advantage(obs, act))


def test_model_return_estimate_is_close_to_the_real_discounted_return(trained: Trained) -> None:
    member = trained.members[0]
    start = torch.as_tensor(np.stack([BoundedPointMassEnv().reset(seed=s)[0] for s in EVAL_SEEDS]))
    estimate = trained.dynamics.rollout_return(member, start, horizon=60, gamma=GAMMA)
    real = score(deterministic(member)).discounted
    assert estimate == pytest.approx(real, rel=0.1)


# --- Uni-O4 --------------------------------------------------------------------------------------------

def test_uni_o4_does_not_make_the_policy_worse_than_bc(trained: Trained, demonstrator: Score) -> None:
    bc = [score(deterministic(m)) for m in trained.members]
    improved = score(deterministic(trained.improved))
    assert improved.failures == 0
    assert improved.ret >= np.mean([s.ret for s in bc]) - 0.02 * demonstrator.ret
    assert improved.discounted >= np.mean([s.discounted for s in bc]) - 0.02 * demonstrator.discounted


def test_uni_o4_report_records_ope_before_and_after(trained: Trained) -> None:
    report = trained.report
    assert len(report["members"]) == BC.ensemble_size
    for entry in report["members"]:
        assert math.isfinite(entry["ope_before"]) and entry["ope_after"] >= entry["ope_before"]
        assert (entry["replacements"] > 0) == (entry["ope_after"] > entry["ope_before"])
    assert report["ope_best"] == max(e["ope_after"] for e in report["members"])
    assert report["replacements"] == sum(e["replacements"] for e in report["members"])
    assert report["replacements"] > 0, "no improvement was ever accepted by the OPE gate"


def test_clipped_objective_steps_raise_the_critic_advantage_of_the_policy(trained: Trained) -> None:
    tensors = OfflineTensors.from_transitions(trained.data, SPEC, "test data")
    estimator = ModelReturnEstimator(trained.dynamics, tensors.start_obs, UNI_O4, seed=0)
    generator = torch.Generator().manual_seed(0)
    improver = BehaviourProximalImprover(trained.members[0], trained.critics, estimator, UNI_O4, generator)

    def mean_advantage() -> float:
        with torch.no_grad():
            return trained.critics.advantage(tensors.obs, improver.policy.mean(tensors.obs)).mean().item()

    before = mean_advantage()
    for step in range(150):   # ungated: the objective alone must move the policy uphill
        improver.update(tensors.sample(256, generator)["obs"], step / 150)
    assert mean_advantage() > before + 0.01
    assert improver.offer_replacement() and improver.behaviour_ope > improver.initial_ope


def test_offline_pipeline_trains_a_recovery_policy_from_recovery_demos() -> None:
    tiny = OfflineConfig(policy=PolicyConfig(hidden=(16,)),
                         bc=BCConfig(ensemble_size=2, steps=10, batch_size=32),
                         critics=CriticConfig(hidden=(16,), steps=10, batch_size=32),
                         dynamics=DynamicsConfig(ensemble_size=2, hidden=(16,), steps=10, batch_size=32),
                         uni_o4=UniO4Config(steps=4, batch_size=32, eval_every=2, ope_horizon=5))
    data = demonstrations("recovery", 6, seed=1)
    policy, critics, report = train_offline_policy(data, SPEC, tiny, seed=0, progress=True)
    assert isinstance(policy, GaussianPolicy) and isinstance(critics, ValueCritics)
    assert report["episodes"] == 6 and report["transitions"] == len(data) and len(report["members"]) == 2
    action, _ = policy.act(data.obs[:3], deterministic=True)
    assert action.shape == (3, 2) and np.all(np.abs(action) <= 1.0)


# --- bad data -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("field", "error", "message"), [
    ("obs", SpecError, r"contains NaN/inf in 'vx'"),
    ("act", SpecError, r"contains NaN/inf in 'ay'"),
    ("rew", DataError, r"'rew' contains NaN/inf"),
])
def test_nan_in_training_data_is_a_clear_error(field: str, error: type[FarlError], message: str) -> None:
    data = copy_of(demonstrations("task", 2, seed=3))
    column = {"obs": 2, "act": 1}.get(field)
    values = getattr(data, field)
    if column is None:
        values[4] = np.nan
    else:
        values[4, column] = np.nan
    with pytest.raises(error, match=message):
        train_offline_policy(data, SPEC)
    with pytest.raises(error, match=message):
        train_bc_ensemble(data, SPEC)


def test_empty_training_data_is_a_clear_error() -> None:
    empty = demonstrations("task", 1, seed=0).subset(slice(0, 0))
    with pytest.raises(DataError, match="no transitions"):
        train_offline_policy(empty, SPEC)
