"""Budget and hyper-parameters of a FailureBench run (section `farl_failurebench` of a parameter file)."""

from __future__ import annotations

from dataclasses import dataclass, field

from farl.training import TrainingConfig
from farl_core.config import param
from farl_policy.ppo_lagrangian import LagrangianConfig
from farl_safety.mppi import MPPIConfig
from farl_safety.recovery_rl import QRiskConfig


@dataclass(frozen=True)
class DemoConfig:
    """How much of each demonstration role to generate per task (paper V.A unless marked ours)."""

    task_episodes: int = param(20, ge=1)            # paper: 20 medium-expert trajectories
    # Ours: the paper's task demos come from BAC; a scripted expert with this action-noise std
    # gives the same medium-expert quality without training BAC first.
    task_noise: float = param(0.3, ge=0.0)
    recovery_episodes: int = param(120, ge=1)       # paper: 120 recovery trajectories
    recovery_steps: int = param(30, ge=1)           # ours: a recovery clip lasts at most 6 s at 5 Hz
    recovery_noise: float = param(0.1, ge=0.0)      # ours
    # Ours: share of the recovery demos that start 2-8 steps before a failure of the pretrained task
    # policy (sampling its actions) instead of at a sampled near-failure state (pretrain.py).
    recovery_from_policy: float = param(0.5, ge=0.0, le=1.0)
    failure_transitions: int = param(20_000, ge=1)  # paper: 20k-200k failing transitions
    failure_noise: float = param(0.5, gt=0.0)       # ours: std of the "controlled stochastic noise"
    # Ours: share of the failure episodes kept out of world-model training and used to pick eps_safe.
    heldout_fraction: float = param(0.2, gt=0.0, lt=1.0)


@dataclass(frozen=True)
class FailureBenchConfig:
    """Everything one `farl bench failurebench` grid uses; shipped as config/failurebench.yaml."""

    demos: DemoConfig = field(default_factory=DemoConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    # Both safety critics (world model and Q-risk) get eps_safe for this failure recall on held-out
    # data, so FARL and Rec-RL are compared at the same operating point.
    target_recall: float = param(0.9, gt=0.0, le=1.0)
    # Ours: unless that recall would flag more than this share of held-out pairs not followed by a
    # failure; then eps_safe rises to keep the false alarms at this share (a weak critic otherwise
    # overrides nearly every step and the task policy never learns).  1.0 turns the cap off.
    max_false_alarm: float = param(0.2, ge=0.0, le=1.0)
    # Ours: the label window of that calibration: a held-out pair counts as "followed by a failure" if
    # one comes within this many steps.  None: the world-model critic's H (3), so an alarm 1-4 steps
    # ahead is a catch.  A longer window asks every critic (world model, Q-risk, FOSP's REF) for
    # earlier alarms at the same recall, which recoveries that need 10-25 steps depend on
    # (BENCHMARKS.md, "Why FARL is not ahead of Rec-RL").
    calibration_window: int | None = param(None, ge=0)
    eval_episodes: int = param(10, ge=1)    # deterministic episodes scoring a policy before/after
    expert_episodes: int = param(10, ge=1)  # scripted-expert episodes defining normalised return 100
    num_envs: int = param(1, ge=1)          # synchronously stepped envs per run
    # Torch threads of every pretraining stage and fine-tuning run, whatever --jobs and the core count:
    # some reductions sum in an order set by the thread count (held-out OPE values moved in the 8th
    # digit from 1 to 2 threads), enough to flip an OPE accept at full budget, so it is pinned with
    # the rest of the config. 1: `--jobs 2` fills 2 cores without oversubscribing them.
    torch_threads: int = param(1, ge=1)
    recovery_rl: QRiskConfig = field(default_factory=QRiskConfig)          # Rec-RL ablation
    mppi: MPPIConfig = field(default_factory=MPPIConfig)                   # MPPI ablation (eps_safe: calibrated)
    ppo_lagrangian: LagrangianConfig = field(default_factory=LagrangianConfig)  # PPO-Lag baseline
