"""Uni-O4 offline policy improvement (paper III.A, Eq. 3) and the whole offline pipeline.

Pipeline (`train_offline_policy`): BC ensemble -> IQL critics -> dynamics ensemble -> for each
member k, ascend the clipped objective J_k of Eq. 3 with actions drawn from the behaviour policy
pi_k and advantages A = Q - V; every `eval_every` steps the dynamics model estimates the
improved policy's return (OPE), and pi_k is replaced by the improved policy only when that
estimate beats pi_k's.  The member with the best estimate is returned.

Nothing here knows which task it trains: the same function turns task demonstrations into the
task policy and recovery demonstrations into the recovery policy (paper III.A).

Hyper-parameter defaults are those of Uni-O4's reference implementation (Lei, He, Lu, Hu, Gao
and Xu, "Uni-O4: Unifying Online and Offline Deep Reinforcement Learning with Multi-Step
On-Policy Optimization", ICLR 2024; `main.py` and `abppo.py` of github.com/Lei-Kun/Uni-O4).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm import tqdm

from farl_core.config import param
from farl_core.metrics import MetricLog
from farl_core.spec import TaskSpec
from farl_core.transitions import Transitions
from farl_policy.bc import BCConfig, train_bc_ensemble
from farl_policy.critics import CriticConfig, ValueCritics, train_critics
from farl_policy.dynamics import DynamicsConfig, DynamicsEnsemble, train_dynamics
from farl_policy.gaussian import GaussianPolicy, PolicyConfig
from farl_policy.offline_data import OfflineTensors, clip_action


@dataclass(frozen=True)
class UniO4Config:
    """Offline improvement settings (Uni-O4 main.py defaults unless noted)."""

    clip_eps: float = param(0.25, gt=0.0, lt=1.0)      # `--clip_ratio 0.25`: epsilon of Eq. 3
    steps: int = param(1_000, ge=1)                    # `--bppo_steps` (1e4 on D4RL; 1e3 in its Go1 config)
    batch_size: int = param(512, ge=1)                 # `--bppo_batch_size 512`
    lr: float = param(1e-4, gt=0.0)                    # `--bppo_lr 1e-4`
    linear_decay: bool = True                          # `--is_linear_decay`: lr and epsilon fall linearly to 0
    max_grad_norm: float = param(0.5, gt=0.0)          # abppo.py clips the gradient norm at 0.5
    entropy_weight: float = param(0.0, ge=0.0)         # `--entropy_weight 0.0`
    eval_every: int = param(100, ge=1)                 # `--eval_step 100`: OPE period, in gradient steps
    ope_horizon: int = param(100, ge=1)                # `--rollout_step`; about one episode of the task
    ope_gamma: float = param(0.99, gt=0.0, le=1.0)
    ope_deterministic: bool = True                     # Uni-O4 rolls out the policy mean
    ope_repeats: int = param(4, ge=1)                  # model rollouts per start state (ensemble sampling)


@dataclass(frozen=True)
class OfflineConfig:
    """Every setting of the offline pipeline, one section per component."""

    policy: PolicyConfig = field(default_factory=PolicyConfig)
    bc: BCConfig = field(default_factory=BCConfig)
    critics: CriticConfig = field(default_factory=CriticConfig)
    dynamics: DynamicsConfig = field(default_factory=DynamicsConfig)
    uni_o4: UniO4Config = field(default_factory=UniO4Config)


def clipped_objective(log_prob_new: torch.Tensor, log_prob_behaviour: torch.Tensor, advantage: torch.Tensor,
                      clip_eps: float) -> torch.Tensor:
    """Paper Eq. 3: J_k = E[min(r A, clip(r, 1 - eps, 1 + eps) A)] with r = pi(a|s) / pi_k(a|s).

    Returns the objective to MAXIMISE (a scalar, averaged over the batch); a trainer minimises
    its negative.  `log_prob_behaviour` is treated as a constant.  The same function serves the
    offline improvement here and online PPO, where pi_k is the policy that collected the batch.
    """
    ratio = torch.exp(log_prob_new - log_prob_behaviour.detach())
    clipped = torch.clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps)
    return torch.minimum(ratio * advantage, clipped * advantage).mean()


class ModelReturnEstimator:
    """Offline policy evaluation: model-predicted discounted return from the data's episode starts.

    Every call uses the same random stream (common random numbers), so two policies are compared
    on identical ensemble-member draws and the comparison is not decided by sampling noise.
    Uni-O4 scores with the mean Q along model rollouts; the model's own return is used here so the
    estimate does not share the critics' errors that drove the improvement.
    """

    def __init__(self, dynamics: DynamicsEnsemble, start_obs: torch.Tensor, config: UniO4Config, seed: int) -> None:
        self.dynamics = dynamics
        self.start_obs = start_obs.repeat(config.ope_repeats, 1)
        self.config = config
        self.seed = seed

    def __call__(self, policy: GaussianPolicy) -> float:
        """Estimated mean return of `policy`."""
        return self.dynamics.rollout_return(policy, self.start_obs, self.config.ope_horizon, self.config.ope_gamma,
                                            deterministic=self.config.ope_deterministic,
                                            generator=torch.Generator().manual_seed(self.seed))


class BehaviourProximalImprover:
    """Uni-O4 for one BC member: the target policy pi, its behaviour policy pi_k and the OPE gate."""

    def __init__(self, member: GaussianPolicy, critics: ValueCritics, evaluate: ModelReturnEstimator,
                 config: UniO4Config, generator: torch.Generator) -> None:
        self.policy = copy.deepcopy(member).train()
        self.behaviour = copy.deepcopy(member).eval().requires_grad_(False)
        self.critics = critics
        self.evaluate = evaluate
        self.config = config
        self.generator = generator
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=config.lr)
        self.initial_ope = self.behaviour_ope = evaluate(self.behaviour)
        self.replacements = 0

    def normalised_advantage(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Critic advantage of the (clipped, as executed) actions, standardised over the batch (Uni-O4)."""
        with torch.no_grad():
            advantage = self.critics.advantage(obs, clip_action(self.policy.spec, act))
        return (advantage - advantage.mean()) / (advantage.std() + 1e-8)

    def update(self, obs: torch.Tensor, progress: float) -> float:
        """One gradient-ascent step on Eq. 3 at data states `obs`; `progress` in [0, 1) drives the decay."""
        scale = 1.0 - progress if self.config.linear_decay else 1.0
        for group in self.optimizer.param_groups:
            group["lr"] = self.config.lr * scale
        with torch.no_grad():
            dist = self.behaviour(obs)
            act = dist.mean + dist.stddev * torch.randn(dist.mean.shape, generator=self.generator)
            log_prob_behaviour = dist.log_prob(act).sum(-1)
        advantage = self.normalised_advantage(obs, act)
        objective = clipped_objective(self.policy.log_prob(obs, act), log_prob_behaviour, advantage,
                                      self.config.clip_eps * scale)
        loss = -objective - self.config.entropy_weight * self.policy.entropy(obs).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.policy.parameters(), self.config.max_grad_norm)
        self.optimizer.step()
        return objective.item()

    def offer_replacement(self) -> bool:
        """Replace pi_k by a copy of pi when the OPE estimate of pi beats pi_k's; report whether it did."""
        estimate = self.evaluate(self.policy)
        if estimate <= self.behaviour_ope:
            return False
        self.behaviour.load_state_dict(self.policy.state_dict())
        self.behaviour_ope = estimate
        self.replacements += 1
        return True


def improve_offline(members: list[GaussianPolicy], critics: ValueCritics, dynamics: DynamicsEnsemble,
                    data: Transitions, config: UniO4Config = UniO4Config(), seed: int = 0,
                    progress: bool = False, log: MetricLog | None = None) -> tuple[GaussianPolicy, dict[str, Any]]:
    """Improve every BC member with Eq. 3 under the OPE gate; return the best by OPE and a report.

    The returned policy is the best member's last accepted behaviour policy, so its estimated
    return is never below that of the BC policy it started from.
    """
    if not members:
        raise ValueError("improve_offline needs at least one BC policy (BCConfig.ensemble_size >= 1)")
    spec = members[0].spec
    spec.require_same(critics.spec, "the critics")
    spec.require_same(dynamics.spec, "the dynamics model")
    tensors = OfflineTensors.from_transitions(data, spec, "offline improvement data")
    evaluate = ModelReturnEstimator(dynamics, tensors.start_obs, config, seed)
    generator = torch.Generator().manual_seed(seed)
    improvers = []
    for k, member in enumerate(members):
        improver = BehaviourProximalImprover(member, critics, evaluate, config, generator)
        for step in tqdm(range(config.steps), desc=f"Uni-O4 member {k + 1}/{len(members)}", disable=not progress):
            objective = improver.update(tensors.sample(config.batch_size, generator)["obs"], step / config.steps)
            metrics = {"objective": objective}
            if (step + 1) % config.eval_every == 0 or step + 1 == config.steps:
                metrics["replaced"] = float(improver.offer_replacement())
                metrics["ope_behaviour"] = improver.behaviour_ope
            if log is not None:
                log(f"uni_o4/member{k}", step, metrics)
        improvers.append(improver)
    best = max(range(len(improvers)), key=lambda k: improvers[k].behaviour_ope)
    report = {"members": [{"ope_before": i.initial_ope, "ope_after": i.behaviour_ope,
                           "replacements": i.replacements} for i in improvers],
              "best_member": best, "ope_best": improvers[best].behaviour_ope,
              "replacements": sum(i.replacements for i in improvers)}
    return improvers[best].behaviour.eval(), report


def train_offline_policy(data: Transitions, spec: TaskSpec, config: OfflineConfig = OfflineConfig(), seed: int = 0,
                         progress: bool = False, log: MetricLog | None = None
                         ) -> tuple[GaussianPolicy, ValueCritics, dict[str, Any]]:
    """The offline phase of paper III.A for one policy: BC -> IQL critics -> dynamics -> Uni-O4.

    `data` is validated against `spec` first, so NaN/inf or a wrong layout fails before training.
    Returns the improved policy, the critics (V initialises the online PPO critic) and a report.
    """
    episodes = len(OfflineTensors.from_transitions(data, spec, "offline training data").start_obs)
    members = train_bc_ensemble(data, spec, config.policy, config.bc, seed=seed, progress=progress, log=log)
    critics = train_critics(data, spec, config.critics, seed=seed + 1, progress=progress, log=log)
    dynamics = train_dynamics(data, spec, config.dynamics, seed=seed + 2, progress=progress, log=log)
    policy, report = improve_offline(members, critics, dynamics, data, config.uni_o4, seed=seed + 3,
                                     progress=progress, log=log)
    return policy, critics, {"transitions": len(data), "episodes": episodes, **report}
