"""The world model learns to foresee point-mass failures, trains on Eq. 4 as specified, and
round-trips through its checkpoint exactly.  The model is trained once (module fixture)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pytest
import torch

from farl_core.spec import SpecError
from farl_core.transitions import DataError, Transitions
from farl_policy.gaussian import GaussianPolicy, PolicyConfig
from farl_safety.calibration import CalibrationReport, calibrate
from farl_safety.safety_critic import SafetyCritic, SafetyCriticConfig
from farl_safety.world_model import (
    SubSequences,
    WorldModel,
    WorldModelConfig,
    h_step_loss,
    train_world_model,
    window_index,
)
from farl_sim.point_mass import SPEC, demonstrations

# Small and fast for a 2-core CI box; the defaults (TD-MPC2 sizes) are for real tasks.
FAST = WorldModelConfig(latent_dim=16, hidden=(64, 64), batch_size=128, lr=1e-3, steps=1000)


def point_mass_data(seed: int, task: int, failure: int) -> Transitions:
    """Task demos plus failure demos (expert with large exploration noise), as in the paper."""
    return Transitions.concat([demonstrations("task", task, seed), demonstrations("failure", failure, seed + 100)])


def behaviour_cloned_policy(seed: int = 0) -> GaussianPolicy:
    """A task policy from a short BC fit on task demos (the critic rolls its mean action).
    Seeded: its initial weights must not depend on which tests ran before it in the worker."""
    task = demonstrations("task", 50, seed=7)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        policy = GaussianPolicy(SPEC, PolicyConfig(hidden=(64, 64)))
    obs, act = torch.as_tensor(task.obs), torch.as_tensor(task.act)
    policy.normalizer.fit(obs)
    optimiser = torch.optim.Adam(policy.parameters(), lr=3e-3)
    for _ in range(300):
        loss = ((policy.mean(obs) - act) ** 2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return policy.eval()


@dataclass
class Trained:
    model: WorldModel
    history: list[dict[str, float]]
    policy: GaussianPolicy
    heldout: Transitions

    def critic(self, model: WorldModel | None = None) -> SafetyCritic:
        return SafetyCritic(model or self.model, self.policy, SafetyCriticConfig())


@pytest.fixture(scope="module")
def trained() -> Trained:
    torch.set_num_threads(1)
    model, history = train_world_model(point_mass_data(seed=0, task=100, failure=300), SPEC, FAST, seed=0)
    return Trained(model, history, behaviour_cloned_policy(), point_mass_data(seed=1, task=50, failure=150))


def test_critic_foresees_heldout_failures(trained: Trained) -> None:
    report = calibrate(trained.critic(), trained.heldout, target_recall=0.9)
    print(report)
    assert isinstance(report, CalibrationReport)
    assert report.n_pos >= 200 and report.n_neg >= 2000
    assert report.auroc >= 0.9
    assert report.recall >= 0.9
    # Far better than flagging everything (precision = base rate ~6 %).
    assert report.precision > 2 * report.n_pos / (report.n_pos + report.n_neg)


def test_training_lowers_the_eq4_loss(trained: Trained) -> None:
    history = trained.history
    assert len(history) == FAST.steps
    for term in ("loss", "constraint", "decoder"):
        first = np.mean([h[term] for h in history[:20]])
        last = np.mean([h[term] for h in history[-20:]])
        assert last < 0.2 * first, term


def test_checkpoint_round_trip_is_bit_exact(trained: Trained, tmp_path) -> None:
    path = trained.model.save(tmp_path / "wm")
    loaded = WorldModel.load(path, spec=SPEC)
    assert loaded.config == trained.model.config
    original, restored = trained.model.state_dict(), loaded.state_dict()
    assert original.keys() == restored.keys()
    assert all(torch.equal(original[k], restored[k]) for k in original)
    obs, act = torch.as_tensor(trained.heldout.obs[:64]), torch.as_tensor(trained.heldout.act[:64])
    assert torch.equal(trained.critic().risk(obs, act), trained.critic(loaded).risk(obs, act))


def test_checkpoint_for_another_task_is_refused(trained: Trained, tmp_path) -> None:
    path = trained.model.save(tmp_path / "wm")
    other = replace(SPEC, name="FragilePushWall")
    with pytest.raises(SpecError, match="different task spec: name is 'BoundedPointMass'"):
        WorldModel.load(path, spec=other)


def test_numpy_risk_rejects_nan_observation(trained: Trained) -> None:
    critic = trained.critic()
    assert 0.0 <= critic.risk_np(trained.heldout.obs[0], trained.heldout.act[0])
    with pytest.raises(SpecError, match="NaN/inf in 'vx'"):
        critic.risk_np(np.array([0.0, 0.0, np.nan, 0.0]), np.zeros(2))


def test_fused_rollout_matches_the_reference_rollout_and_follows_policy_updates(trained: Trained) -> None:
    """The fast path the shield uses must compute the same C_H as the readable one, also after
    the task policy changes in place (online PPO updates the weights the fused path views)."""
    policy = behaviour_cloned_policy()
    critic = SafetyCritic(trained.model, policy, SafetyCriticConfig(horizon=10))
    assert critic._fused is not None
    obs, act = torch.as_tensor(trained.heldout.obs[:256]), torch.as_tensor(trained.heldout.act[:256])

    def both() -> tuple[torch.Tensor, torch.Tensor]:
        with torch.inference_mode():
            return (critic._fused.failure_probabilities(obs, act, 10), critic._reference_probabilities(obs, act))

    fused, reference = both()
    torch.testing.assert_close(fused, reference, rtol=1e-4, atol=1e-5)
    # One in-place step that drives the policy towards +x, into the boundary: an update the
    # critic must see (shrinking the actions towards zero instead moves some seeds by < 0.02).
    optimiser = torch.optim.SGD(policy.parameters(), lr=0.5)
    (-policy.mean(obs)[:, 0]).sum().backward()
    optimiser.step()
    fused_after, reference_after = both()
    # The update moved probabilities by far more than the float rounding the folds reorder
    # (which grows over 10 imagined steps of a saturated tanh policy to ~1e-4).
    assert (reference_after - reference).abs().max() > 0.05
    torch.testing.assert_close(fused_after, reference_after, rtol=1e-3, atol=5e-4)


def toy_episodes() -> Transitions:
    """Two episodes: rows 0-2 (failure at row 2), rows 3-7 (time limit)."""
    rng = np.random.default_rng(0)
    n = 8
    return Transitions(obs=rng.normal(size=(n, 4)).astype(np.float32),
                       act=rng.uniform(-1, 1, size=(n, 2)).astype(np.float32),
                       rew=rng.normal(size=n).astype(np.float32),
                       next_obs=rng.normal(size=(n, 4)).astype(np.float32),
                       terminated=np.array([0, 0, 1, 0, 0, 0, 0, 0], bool),
                       truncated=np.array([0, 0, 0, 0, 0, 0, 0, 1], bool),
                       cost=np.array([0, 0, 1, 0, 0, 0, 0, 0], np.float32))


def test_windows_stop_at_episode_ends() -> None:
    index, mask = window_index(toy_episodes(), horizon=4)
    np.testing.assert_array_equal(index[1], [1, 2, 3, 4])
    np.testing.assert_array_equal(mask[1], [True, True, False, False])   # row 3 is another episode
    np.testing.assert_array_equal(mask[3], [True, True, True, True])
    np.testing.assert_array_equal(mask[6], [True, True, False, False])   # past the end of the data
    np.testing.assert_array_equal(index[7], [7, 7, 7, 7])


def loss_and_grads(model: WorldModel, data: Transitions) -> tuple[torch.Tensor, list[torch.Tensor]]:
    model.zero_grad()
    loss, _ = h_step_loss(model, SubSequences.from_transitions(data, horizon=5, starts=np.array([0, 1])))
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in model.parameters()]


def test_h_step_loss_ignores_data_after_episode_end() -> None:
    torch.manual_seed(0)
    model = WorldModel(SPEC, replace(FAST, horizon=5))
    data = toy_episodes()
    loss, grads = loss_and_grads(model, data)
    after = toy_episodes()
    for name in ("obs", "act", "next_obs"):
        getattr(after, name)[3:] = np.nan
    after.rew[3:], after.cost[3:] = 1e6, 1.0
    loss_after, grads_after = loss_and_grads(model, after)
    assert torch.equal(loss, loss_after)
    assert all(torch.equal(g, h) for g, h in zip(grads, grads_after, strict=True))
    # Control: the same edit inside the episode does change the loss.
    inside = toy_episodes()
    inside.rew[2] = 1e3
    assert not torch.equal(loss, loss_and_grads(model, inside)[0])


def test_step_loss_terms_match_their_definitions() -> None:
    """L(theta; Gamma_i) for H = 1, recomputed from the model's components by hand."""
    torch.manual_seed(0)
    model = WorldModel(SPEC, replace(FAST, horizon=1, failure_weight=10.0))
    data = toy_episodes()
    rows = np.array([0, 2])  # row 2 is the failure step
    _, terms = h_step_loss(model, SubSequences.from_transitions(data, horizon=1, starts=rows))
    obs, act = torch.as_tensor(data.obs[rows]), torch.as_tensor(data.act[rows])
    next_obs, rew = torch.as_tensor(data.next_obs[rows]), torch.as_tensor(data.rew[rows])
    with torch.no_grad():
        z = model.encode(obs)
        consistency = ((model.next(z, act) - model.encode(next_obs)) ** 2).mean(-1).mean()
        reward = ((model.reward(z, act) - rew) ** 2).mean()
        logit = model.constraint_logit(z, act)
        # BCE: -log(1 - p) for the safe row, 10 x -log(p) for the failure row.
        constraint = (-torch.log1p(-torch.sigmoid(logit[0])) - 10.0 * torch.log(torch.sigmoid(logit[1]))) / 2
        decoder = ((model.normalizer(model.decode(z)) - model.normalizer(obs)) ** 2).mean(-1).mean()
    expected = {"consistency": consistency, "reward": reward, "constraint": constraint, "decoder": decoder}
    for name, value in expected.items():
        assert terms[name] == pytest.approx(float(value), rel=1e-4), name


def test_masked_steps_add_exactly_zero() -> None:
    """A 5-step window over a 3-step episode has the loss of the 3-step window."""
    torch.manual_seed(0)
    model = WorldModel(SPEC, FAST)
    data = toy_episodes()
    _, long = h_step_loss(model, SubSequences.from_transitions(data, horizon=5, starts=np.array([0])))
    _, short = h_step_loss(model, SubSequences.from_transitions(data, horizon=3, starts=np.array([0])))
    assert long == pytest.approx(short, rel=1e-6)


def test_h_step_loss_weights_steps_by_lambda() -> None:
    torch.manual_seed(0)
    data = toy_episodes()
    batch = SubSequences.from_transitions(data, horizon=3, starts=np.array([3]))
    model = WorldModel(SPEC, replace(FAST, horizon=3, lam=0.5))
    one_step = SubSequences(**{k: v[:, :1] for k, v in vars(batch).items()})
    _, full = h_step_loss(model, batch)
    _, first = h_step_loss(model, one_step)
    # Step 0 has weight lambda^0 = 1: the 1-step loss is the first term of the 3-step sum.
    assert first["decoder"] < full["decoder"]
    model_flat = WorldModel(SPEC, replace(FAST, horizon=3, lam=1e-6))
    model_flat.load_state_dict(model.state_dict())
    _, tiny = h_step_loss(model_flat, batch)
    assert tiny["decoder"] == pytest.approx(first["decoder"], rel=1e-4)


def test_training_refuses_data_without_failures() -> None:
    with pytest.raises(DataError, match="no failure"):
        train_world_model(demonstrations("task", 3, seed=0), SPEC, replace(FAST, steps=1))


def test_training_is_seeded_locally_and_shows_progress(capsys) -> None:
    data = demonstrations("failure", 5, seed=0)
    config = replace(FAST, steps=3, batch_size=8)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    first, history = train_world_model(data, SPEC, config, seed=4, progress=True)
    assert torch.equal(torch.rand(1), before)  # the caller's RNG stream is untouched
    second, _ = train_world_model(data, SPEC, config, seed=4)
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values(),
                                                 strict=True))
    assert len(history) == 3 and set(history[0]) == {"loss", "consistency", "reward", "constraint", "decoder"}
    assert "world model" in capsys.readouterr().err
