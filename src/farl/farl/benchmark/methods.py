"""The methods a FailureBench grid compares, each as a recipe for an OnlineFinetuner.

Every method starts from the same pretrained task policy and offline V (the paper's protocol):

  uni-o4   online PPO, no shield (the paper's baseline)
  farl     shield = world-model C_H (Eq. 1) + pretrained recovery policy (the paper's method)
  rec-rl   shield = Recovery-RL Q-risk critic (Eq. 15-16) + recovery policy (ablation, Table II)
  mppi     shield = world-model C_H + MPPI planning on the world model (ablation, Table II)
  ppo-lag  PPO-Lagrangian on the episode cost, no shield (Table I)
  fosp     FOSP (Cao et al., ICLR 2025): its own offline policy, REF and critics from the same demos;
           online, safe policy expansion between the frozen offline policy and a PPO-tuned copy

Shielded methods use eps_safe from calibration.json: each critic's threshold for the same target
failure recall on held-out failures.  After fine-tuning, a method is scored twice: its policy alone
(what the paper's return compares) and as deployed, behind its action filter (`deployed_filter`).
"""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import torch

from farl.benchmark.config import FailureBenchConfig
from farl.benchmark.pretrain import load_json
from farl.fosp import FOSPModels, fosp_finetuner_parts
from farl.online import OnlineFinetuner
from farl.tasks import Task
from farl_policy.critics import ValueCritics
from farl_policy.gaussian import GaussianPolicy
from farl_policy.ppo_lagrangian import PPOLagrangian
from farl_safety.mppi import MPPIPlanner
from farl_safety.recovery_rl import QRiskCritic
from farl_safety.safety_critic import SafetyCritic
from farl_safety.shield import ActionFilter, RecoveryActor, RiskCritic, Shield
from farl_safety.world_model import WorldModel

METHODS = ("uni-o4", "farl", "rec-rl", "mppi", "ppo-lag", "fosp")


def build_finetuner(method: str, task: Task, root: Path, config: FailureBenchConfig, steps: int,
                    seed: int) -> OnlineFinetuner:
    """A fresh fine-tuner for `method` from the pretraining artefacts in `root`."""
    training = config.training
    total_updates = max(1, steps // training.ppo.rollout_steps)
    if method == "fosp":
        torch.manual_seed(seed)
        policy, value, expansion = fosp_finetuner_parts(FOSPModels.load(root / "fosp", spec=task.spec),
                                                        training.fosp, seed)
        return OnlineFinetuner(policy, value, training.ppo, total_updates, shield=expansion, seed=seed)
    policy = GaussianPolicy.load(root / "task_policy" / "policy", kind="task_policy", spec=task.spec)
    value = copy.deepcopy(ValueCritics.load(root / "task_policy" / "critics", spec=task.spec).v)
    torch.manual_seed(seed)
    if method == "ppo-lag":
        algorithm = PPOLagrangian(policy, value, training.ppo, total_updates, config.ppo_lagrangian, seed=seed)
        return OnlineFinetuner(policy, value, training.ppo, total_updates, seed=seed, algorithm=algorithm)
    shield = None if method == "uni-o4" else build_shield(method, task, root, config, policy, seed)
    return OnlineFinetuner(policy, value, training.ppo, total_updates, shield=shield, seed=seed)


def build_shield(method: str, task: Task, root: Path, config: FailureBenchConfig, policy: GaussianPolicy,
                 seed: int) -> Shield:
    """The shield of a shielded method (farl, rec-rl, mppi) from the pretraining artefacts in `root`."""
    calibration = load_json(root / "calibration.json")
    model = WorldModel.load(root / "world_model" / "world_model", spec=task.spec)
    critic: RiskCritic = SafetyCritic(model, policy, config.training.safety_critic)
    threshold = calibration["world_model"]["eps_safe"]
    if method == "rec-rl":
        critic = QRiskCritic.load(root / "q_risk", spec=task.spec)
        threshold = calibration["q_risk"]["eps_safe"]
    recovery: RecoveryActor = GaussianPolicy.load(root / "recovery_policy" / "policy", kind="recovery_policy",
                                                  spec=task.spec)
    if method == "mppi":
        recovery = MPPIPlanner(model, replace(config.mppi, eps_safe=threshold), seed=seed)
    return Shield(critic, recovery, replace(config.training.shield, eps_safe=threshold))


def deployed_filter(method: str, task: Task, root: Path, config: FailureBenchConfig,
                    finetuner: OnlineFinetuner, seed: int) -> ActionFilter | None:
    """What stands between `method`'s fine-tuned policy and the robot when it is deployed: a fresh
    shield around it (farl, rec-rl, mppi), FOSP's policy expansion, or nothing (uni-o4, ppo-lag).

    The shield is rebuilt, not taken from the fine-tuner, so that the score does not depend on the
    state the run left it in (MPPI's sampler); FARL's critic then imagines the fine-tuned policy.
    """
    if method == "fosp":
        return finetuner.shield
    if method in ("uni-o4", "ppo-lag"):
        return None
    return build_shield(method, task, root, config, finetuner.policy, seed)
