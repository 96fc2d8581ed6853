"""FOSP's offline policy: in-sample, reachability-guided policy extraction under an augmented Lagrangian.

FOSP pretrains its policy from the offline data alone ("in-sample optimisation"): the policy is fit
by weighted regression onto the data's own actions, with weights from critics that never query an
action outside the data, so nothing is extrapolated.  The weights switch between two objectives
by the REF (reachability.py), softly, as FOSP's code gates them with the REF value p = V_ref(s):

    w(s, a) = p(s)       * exp(kappa_c * (V_ref(s) - Q_ref(s, a)))                 where infeasible
            + (1 - p(s)) * 1[Q_ref(s, a) <= eps] * exp(kappa_r * A_r(s, a))        where feasible

In a state that will likely reach a failure the policy copies the data actions that lower the
reachability most; in a feasible one it copies the high-advantage actions (A_r = Q_r - V_r, IQL
critics) among those that stay feasible (eps: the REF's threshold, `ReachabilityConfig.feasible`).
This is FISOR's closed-form policy (Zheng et al., ICLR 2024) with FOSP's soft gate; the weights are
clipped as FISOR clips them.

The augmented Lagrangian enforces the cost constraint on the policy's own actions, which the
weights alone cannot see: g = E_s[(1 - p(s)) Q_ref(s, pi(s))] - d, the reachability of the
policy's mean action in feasible states (FOSP's code leaves REF-infeasible states out of the
constraint) against a limit d, with the augmented-Lagrangian term of Nocedal & Wright (eq. 17.65)
as SafeDreamer and FOSP's code write it, and the multiplier and penalty updated after each step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm import tqdm

from farl_core.config import param
from farl_core.metrics import MetricLog
from farl_core.spec import TaskSpec
from farl_core.transitions import Transitions
from farl_policy.critics import ValueCritics
from farl_policy.gaussian import GaussianPolicy, PolicyConfig
from farl_policy.offline_data import OfflineTensors
from farl_safety.reachability import ReachabilityCritic


@dataclass(frozen=True)
class SafeOfflineConfig:
    """Policy extraction hyper-parameters and their sources."""

    # Inverse temperatures of the reward and reachability advantages and the weight clips: FISOR's
    # (reward 3, cost 5; clips 100 and 150).  FOSP's code normalises its advantages instead.
    reward_temperature: float = param(3.0, gt=0.0)
    reachability_temperature: float = param(5.0, gt=0.0)
    reward_weight_clip: float = param(100.0, gt=0.0)
    reachability_weight_clip: float = param(150.0, gt=0.0)
    # Augmented Lagrangian: the update rule and the penalty cap 1 are FOSP's code (from SafeDreamer);
    # its start values (multiplier 1e-6, penalty 5e-9, growth 1e-5 per update) act over ~1e6 updates,
    # so ours start the penalty at 0.01 and grow it 1e-3 per update to act within a few thousand.
    # d: ours, the tolerated reachability of the policy's action in feasible states (FOSP's is 0 on
    # a cost return; a probability never reaches 0 exactly, so 0 would only grow the multiplier).
    cost_limit: float = param(0.1, ge=0.0, lt=1.0)
    multiplier_init: float = param(1e-6, ge=0.0)
    penalty_init: float = param(0.01, gt=0.0)
    penalty_growth: float = param(1e-3, ge=0.0)
    penalty_max: float = param(1.0, gt=0.0)
    lr: float = param(3e-4, gt=0.0)
    batch_size: int = param(256, ge=1)
    steps: int = param(10_000, ge=1)


class AugmentedLagrangian:
    """Multiplier lambda and penalty c for one inequality constraint g <= 0."""

    def __init__(self, config: SafeOfflineConfig) -> None:
        self.multiplier = config.multiplier_init
        self.penalty = config.penalty_init
        self.growth = config.penalty_growth
        self.penalty_max = config.penalty_max

    def term(self, violation: torch.Tensor) -> torch.Tensor:
        """psi(g): lambda g + c g^2 / 2 while the constraint is active, else the constant -lambda^2 / (2c)."""
        if self.multiplier + self.penalty * violation.item() > 0.0:
            return self.multiplier * violation + 0.5 * self.penalty * violation.square()
        return torch.full_like(violation, -self.multiplier ** 2 / (2.0 * self.penalty))

    def update(self, violation: float) -> None:
        """lambda <- max(0, lambda + c g); c <- min(c (1 + growth), c_max)."""
        self.multiplier = max(0.0, self.multiplier + self.penalty * violation)
        self.penalty = min(self.penalty * (1.0 + self.growth), self.penalty_max)


def extraction_weights(obs: torch.Tensor, act: torch.Tensor, critics: ValueCritics, ref: ReachabilityCritic,
                       config: SafeOfflineConfig) -> torch.Tensor:
    """The REF-gated regression weight w(s, a) of each data pair, [B] (module docstring)."""
    with torch.no_grad():
        infeasible = ref.value(obs)
        q_ref = ref.q_value(obs, act)
        reward = torch.exp(config.reward_temperature * critics.advantage(obs, act)).clamp(
            max=config.reward_weight_clip)
        recover = torch.exp(config.reachability_temperature * (infeasible - q_ref)).clamp(
            max=config.reachability_weight_clip)
        return infeasible * recover + (1.0 - infeasible) * (q_ref <= ref.config.feasible).float() * reward


def train_safe_policy(data: Transitions, spec: TaskSpec, critics: ValueCritics, ref: ReachabilityCritic,
                      config: SafeOfflineConfig = SafeOfflineConfig(), policy_config: PolicyConfig | None = None,
                      seed: int = 0, progress: bool = False,
                      log: MetricLog | None = None) -> tuple[GaussianPolicy, dict[str, float]]:
    """Fit FOSP's offline policy on `data` with frozen critics; returns it (eval mode) and the final
    Lagrangian state and mean weight for the report."""
    tensors = OfflineTensors.from_transitions(data, spec, "FOSP policy training data")
    spec.require_same(critics.spec, "the reward critics given to FOSP")
    spec.require_same(ref.spec, "the REF given to FOSP")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        policy = GaussianPolicy(spec, policy_config or PolicyConfig())
    policy.normalizer.fit(tensors.obs)
    critics.requires_grad_(False)
    ref.requires_grad_(False)
    lagrangian = AugmentedLagrangian(config)
    optimiser = torch.optim.Adam(policy.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(seed)
    policy.train()
    stats: dict[str, float] = {}
    for step in tqdm(range(config.steps), desc="FOSP policy", disable=not progress):
        batch = tensors.sample(config.batch_size, generator)
        obs, act = batch["obs"], batch["act"]
        weights = extraction_weights(obs, act, critics, ref, config)
        regression = -(weights * policy.log_prob(obs, act)).mean()
        feasible_share = 1.0 - ref.value(obs)
        violation = (feasible_share * ref.q_value(obs, policy.mean(obs))).mean() - config.cost_limit
        loss = regression + lagrangian.term(violation)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        lagrangian.update(violation.item())
        stats = {"regression": regression.item(), "violation": violation.item(), "mean_weight": float(weights.mean()),
                 "multiplier": lagrangian.multiplier, "penalty": lagrangian.penalty}
        if log is not None:
            log("fosp_policy", step, stats)
    return policy.eval(), stats
