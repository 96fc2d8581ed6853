"""H-step safety critic: paper Eq. 1 evaluated by imagining the task policy in the world model.

Given the current observation s_t and a proposed action a_t, the critic encodes s_t, applies
a_t, and then lets the task policy act (its deterministic mean on the decoded observation) for
H more latent steps, summing the discounted per-step failure probabilities of the constraint
head.  The shield (`shield.py`, which owns eps_safe) compares the result with eps_safe
(Eq. 2: a pair is safe iff C_H <= eps_safe).

Probability mass after a predicted failure is not removed: Eq. 1 sums the marginal per-step
probabilities as written, with no survival weighting.  The world model never saw data after a
failure (those steps are masked out of Eq. 4), so what it predicts there is extrapolation; if
anything it keeps predicting "near the wall", which only raises C_H, the conservative side.
C_H is therefore a discounted expected failure count, not a probability: it lies in
[0, sum_i gamma_risk^i], and eps_safe is on that scale (`calibrate` picks it from data).

Speed: the shield evaluates C_H every 200 ms control step at batch 1 on a CPU, where Python and
dispatch overhead, not arithmetic, dominate.  When the world model's components are plain MLPs
and the task policy is a GaussianPolicy (every trained model), `risk` runs a fused rollout
(`_FusedRollout`): the same equations with the networks called as plain functions and the affine
steps that cancel folded away.  Anything else (e.g. a hand-planted model in a test) takes the
readable reference rollout; the tests check that both give the same C_H.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import nn

from farl_core.config import param
from farl_core.spec import SpecError, TaskSpec
from farl_policy.gaussian import GaussianPolicy
from farl_policy.layers import inference_forward
from farl_safety.world_model import WorldModel


class TaskPolicy(Protocol):
    """What the critic needs of the task policy (GaussianPolicy satisfies it)."""

    spec: TaskSpec

    def mean(self, obs: torch.Tensor) -> torch.Tensor:
        """Deterministic action for a batch of raw observations."""
        ...


@dataclass(frozen=True)
class SafetyCriticConfig:
    """Horizon, risk discount and threshold of the safety critic (paper Eqs. 1 and 2)."""

    # H of Eq. 1, at most the world model's training horizon (5): rolling the latent dynamics
    # further than trained compounds its error.  3 is TD-MPC2's horizon, and on the point-mass
    # benchmark it foresees held-out failures best: C_H imagines the task policy's mean action,
    # so failures that exploration noise causes more than ~3 steps later are beyond what any
    # deterministic rollout can predict (AUROC vs "failure within H steps": ~0.95 at H = 3,
    # ~0.87 at H = 5 for the same model; the true simulator rolling the expert scores 0.63).
    horizon: int = param(3, ge=0, le=100)
    # gamma_risk of Eq. 1.  0.9 keeps the last step at weight 0.73 (H = 3; 0.59 at H = 5), so a
    # failure foreseen at the horizon still counts while nearer failures rank higher; 0.5 would
    # weight step 3 at 0.125 and quietly shorten the horizon the config claims.
    gamma_risk: float = param(0.9, gt=0.0, le=1.0)


class SafetyCritic:
    """C_H(s_t, a_t) from a world model and the task policy; batched, inference only."""

    def __init__(self, world_model: WorldModel, policy: TaskPolicy,
                 config: SafetyCriticConfig = SafetyCriticConfig()) -> None:
        world_model.spec.require_same(policy.spec, "the task policy given to the safety critic")
        self.world_model = world_model.eval()
        self.policy = policy
        self.config = config
        self.spec = world_model.spec
        self._discount = config.gamma_risk ** torch.arange(config.horizon + 1, dtype=torch.float32)
        self._low = torch.tensor(self.spec.action_low, dtype=torch.float32)
        self._high = torch.tensor(self.spec.action_high, dtype=torch.float32)
        self._fused = _FusedRollout.build(world_model, policy)

    @torch.inference_mode()
    def risk(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Paper Eq. 1: C_H = sum_{i=t}^{t+H} gamma_risk^(i-t) P(C(s_i, a_i) = 1), shape [B].

        (s_t, a_t) = (obs, act) [B, dim]; a_t is clipped to the action box first, as the robot
        bridge will clip it.  For i > t, s_i is the world model's prediction and a_i the task
        policy's mean action on the decoded s_i.  That is H latent steps and H + 1 constraint
        terms; the constraint head runs once on all of them stacked, to keep Python overhead
        low enough for a 200 ms control loop.
        """
        a = torch.maximum(torch.minimum(act, self._high), self._low)
        if self._fused is not None:
            probability = self._fused.failure_probabilities(obs, a, self.config.horizon)
        else:
            probability = self._reference_probabilities(obs, a)
        return (self._discount[:, None] * probability).sum(0)

    def _reference_probabilities(self, obs: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """P(C(s_i, a_i) = 1) for i = t..t+H, [H+1, B], by the world model's and policy's methods."""
        wm = self.world_model
        z = wm.encode(obs)
        latents, actions = [z], [a]
        for _ in range(self.config.horizon):
            z = wm.next(z, a)
            a = self.policy.mean(wm.decode(z))
            latents.append(z)
            actions.append(a)
        return torch.sigmoid(wm.constraint_logit(torch.stack(latents), torch.stack(actions)))

    def risk_np(self, obs: np.ndarray, act: np.ndarray) -> float:
        """C_H of one (observation, action) pair; NaN/inf or a wrong shape is a SpecError."""
        obs = self.spec.check_observation(obs)
        act = self.spec.check_action(act)
        if obs.ndim != 1 or act.ndim != 1:
            raise SpecError(f"risk_np takes one observation and one action, got shapes {obs.shape} and "
                            f"{act.shape} (use risk() with tensors for a batch)")
        return float(self.risk(torch.from_numpy(obs)[None], torch.from_numpy(act)[None])[0])


class _FusedRollout:
    """`_reference_probabilities` for an MLP world model and a GaussianPolicy, with less overhead.

    Two folds, both exact up to float rounding: (1) the policy's bounded mean
    centre + scale * tanh(.) is immediately rescaled by the world model to (a - centre) / scale,
    and both use the same task spec's action box, so the scaled action is tanh(.) itself;
    (2) decode's un-normalisation followed by the policy's normalisation is one affine map.
    The networks run through `inference_forward` (live weights, no module dispatch).
    """

    def __init__(self, world_model: WorldModel, policy: GaussianPolicy) -> None:
        self.world_model, self.policy = world_model, policy
        self.encoder, self.dynamics, self.decoder, self.constraint_head, self.policy_body = (
            inference_forward(net) for net in (world_model.encoder, world_model.dynamics, world_model.decoder,
                                               world_model.constraint_head, policy.body))

    @classmethod
    def build(cls, world_model: WorldModel, policy: TaskPolicy) -> _FusedRollout | None:
        """The fused rollout, or None when a component is not the standard network."""
        nets = (world_model.encoder, world_model.dynamics, world_model.decoder, world_model.constraint_head)
        if isinstance(policy, GaussianPolicy) and all(isinstance(net, nn.Sequential) for net in nets):
            return cls(world_model, policy)
        return None

    def failure_probabilities(self, obs: torch.Tensor, act: torch.Tensor, horizon: int) -> torch.Tensor:
        """P(C(s_i, a_i) = 1) for i = t..t+H, [H+1, B]; `act` already clipped to the box."""
        wm, pol = self.world_model, self.policy
        # Normalisers are frozen, but read them per call so that loading new statistics is seen.
        gain = wm.normalizer.std / pol.normalizer.std
        offset = (wm.normalizer.mean - pol.normalizer.mean) / pol.normalizer.std
        a = (act - wm.action_centre) / wm.action_scale
        z = self.encoder(wm.normalizer(obs))
        latents, actions = [z], [a]
        for _ in range(horizon):
            z = self.dynamics(torch.cat([z, a], dim=-1))
            a = torch.tanh(self.policy_body(self.decoder(z) * gain + offset))
            latents.append(z)
            actions.append(a)
        return torch.sigmoid(self.constraint_head(torch.cat([torch.stack(latents), torch.stack(actions)], dim=-1))
                             ).squeeze(-1)
