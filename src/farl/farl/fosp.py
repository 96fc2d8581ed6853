"""FOSP (Cao et al., ICLR 2025) as a method: offline training of its three models, online fine-tuning.

Offline, from the same task, recovery and failure demonstrations the other methods get:
  critics        IQL reward critics Q_r, V_r (farl_policy/critics.py)
  reachability   the REF Q_ref, V_ref (farl_safety/reachability.py)
  policy         REF-gated in-sample policy extraction under an augmented Lagrangian
                 (farl_safety/safe_offline.py)
Online: the offline policy stays frozen beside an online copy of it that PPO fine-tunes, and safe
policy expansion (farl_safety/policy_expansion.py) picks which of the two acts each step.

Adapted to this project, each said in the README: states instead of images, so the critics read
the observation and no world model is needed for them (FOSP's critics and actor learn on the
latents and imagined rollouts of a DreamerV3 model); the online policy starts as a copy of the
offline one (PEX starts a new one) and learns by PPO from the executed steps, like every method of
the FailureBench grid; the critics stay frozen online, as FARL's world model does.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from farl_core.metrics import MetricLog
from farl_core.spec import TaskSpec
from farl_core.transitions import Transitions
from farl_policy.critics import CriticConfig, ValueCritics, train_critics
from farl_policy.gaussian import GaussianPolicy, PolicyConfig
from farl_safety.policy_expansion import PolicyExpansion, PolicyExpansionConfig
from farl_safety.reachability import ReachabilityConfig, ReachabilityCritic, train_reachability
from farl_safety.safe_offline import SafeOfflineConfig, train_safe_policy

POLICY_KIND = "fosp_policy"


@dataclass(frozen=True)
class FOSPConfig:
    """Every FOSP hyper-parameter (section `fosp` of `farl_training`); sources in each dataclass."""

    critics: CriticConfig = field(default_factory=CriticConfig)
    reachability: ReachabilityConfig = field(default_factory=ReachabilityConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    offline: SafeOfflineConfig = field(default_factory=SafeOfflineConfig)
    expansion: PolicyExpansionConfig = field(default_factory=PolicyExpansionConfig)


@dataclass
class FOSPModels:
    """The offline products: the policy, its reward critics and the REF."""

    policy: GaussianPolicy
    critics: ValueCritics
    reachability: ReachabilityCritic

    def save(self, out: Path, extra: dict[str, Any] | None = None, overwrite: bool = False) -> None:
        self.policy.save(out / "policy", kind=POLICY_KIND, extra=extra, overwrite=overwrite)
        self.critics.save(out / "critics", overwrite=overwrite)
        self.reachability.save(out / "reachability", overwrite=overwrite)

    @classmethod
    def load(cls, out: Path, spec: TaskSpec | None = None) -> FOSPModels:
        """Read a `farl train fosp` directory; with `spec`, refuse models of another task (SpecError)."""
        return cls(GaussianPolicy.load(out / "policy", kind=POLICY_KIND, spec=spec),
                   ValueCritics.load(out / "critics", spec=spec),
                   ReachabilityCritic.load(out / "reachability", spec=spec))


def train_fosp(data: Transitions, spec: TaskSpec, config: FOSPConfig, seed: int = 0, progress: bool = False,
               log: MetricLog | None = None,
               feasible_for: Callable[[ReachabilityCritic], float] | None = None) -> tuple[FOSPModels, dict[str, Any]]:
    """The offline phase on task + recovery + failure transitions; returns the models and a report.

    `feasible_for`: picks the REF's feasibility threshold from the trained REF (the FailureBench grid
    calibrates it on held-out failures); without it, `config.reachability.feasible`.  Either way
    the threshold the policy was extracted with is saved with the REF and used online.
    """
    critics = train_critics(data, spec, config.critics, seed=seed, progress=progress, log=log)
    ref = train_reachability(data, spec, config.reachability, seed=seed, progress=progress, log=log)
    if feasible_for is not None:
        ref.config = replace(ref.config, feasible=feasible_for(ref))
    policy, stats = train_safe_policy(data, spec, critics, ref, config.offline, config.policy, seed=seed,
                                      progress=progress, log=log)
    report = {"transitions": len(data), "failures": int(data.cost.sum()), "final": stats,
              "feasible": ref.config.feasible, "config": asdict(config)}
    return FOSPModels(policy, critics, ref), report


def fosp_finetuner_parts(models: FOSPModels, config: FOSPConfig, seed: int
                         ) -> tuple[GaussianPolicy, torch.nn.Module, PolicyExpansion]:
    """(online policy, PPO value, policy expansion): the online policy and value start as copies of the
    offline policy and V_r; the offline policy, Q_r and the REF stay frozen inside the expansion."""
    online = copy.deepcopy(models.policy).train().requires_grad_(True)
    value = copy.deepcopy(models.critics.v).requires_grad_(True)
    expansion = PolicyExpansion(models.policy, models.critics.q, models.reachability, config.expansion, seed=seed)
    return online, value, expansion

