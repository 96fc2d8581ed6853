"""The training jobs behind `farl train ...`, `farl calibrate` and `farl finetune`.

Each job reads data or checkpoints, runs the components of farl_policy / farl_safety, and writes
a run directory: checkpoints (one sub-directory per model), `report.json`, CSV logs and plots.
Nothing already on disk is replaced unless the user passes --overwrite.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from farl.fosp import FOSPConfig, FOSPModels, fosp_finetuner_parts, train_fosp
from farl.online import OnlineFinetuner, OnlineResult, run_online
from farl.tasks import Task
from farl_core.atomic_files import write_atomic
from farl_core.checkpoint import CheckpointError
from farl_core.datasets import is_dataset, load_dataset, save_dataset
from farl_core.metrics import MetricsWriter
from farl_core.transitions import DataError, Transitions
from farl_policy.critics import ValueCritics
from farl_policy.gaussian import GaussianPolicy
from farl_policy.ppo import PPOConfig
from farl_policy.uni_o4 import OfflineConfig, train_offline_policy
from farl_safety.calibration import CalibrationReport, calibrate
from farl_safety.reachability import ReachabilityCritic
from farl_safety.safety_critic import SafetyCritic, SafetyCriticConfig
from farl_safety.shield import ActionFilter, Shield, ShieldConfig
from farl_safety.world_model import WorldModel, WorldModelConfig, train_world_model
from farl_sim.recording import record_failures, record_policy_recoveries


@dataclass(frozen=True)
class TrainingConfig:
    """Every learning hyper-parameter (section `farl_training` of the parameter file)."""

    offline: OfflineConfig = field(default_factory=OfflineConfig)
    world_model: WorldModelConfig = field(default_factory=WorldModelConfig)
    safety_critic: SafetyCriticConfig = field(default_factory=SafetyCriticConfig)
    shield: ShieldConfig = field(default_factory=ShieldConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    fosp: FOSPConfig = field(default_factory=FOSPConfig)  # the FOSP method (farl/fosp.py)


def load_data(paths: list[Path], task: Task) -> Transitions:
    """Concatenate Minari dataset folders and/or .npz transition files, each validated against the task spec."""
    return Transitions.concat([load_dataset(p, task.spec)[0] if is_dataset(p) else Transitions.load(p, task.spec)
                               for p in paths])


def save_data(data: Transitions, path: Path, task: Task, label: str, overwrite: bool = False) -> Path:
    """Write demonstrations as a Minari dataset folder, or as .npz when `path` ends in .npz."""
    if path.suffix == ".npz":
        return data.save(path, overwrite=overwrite)
    return save_dataset(data, path, task.spec, label, env_id=task.env_id, overwrite=overwrite)


def prepare_run_dir(out: Path, overwrite: bool) -> Path:
    """Create the run directory; refuse a non-empty one unless overwriting was asked for."""
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise CheckpointError(f"{out} already holds results (choose another --out, or pass --overwrite)")
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Atomic JSON write (temp file + rename)."""
    write_atomic(path, lambda tmp: tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str)))


def policy_failure_demos(task: Task, policy_dir: Path, noise: float, transitions: int, seed: int,
                         progress: bool = False) -> Transitions:
    """Failing episodes of the offline-pretrained task policy with N(0, noise^2) action noise (paper V.A);
    half of the episodes hand over to the task's guided-failure controller part-way (record_failures).

    Tries at most max(200, transitions / 5) episodes, so a policy that hardly fails ends with a
    clear error instead of looping; fewer transitions than asked are returned as they are.
    """
    policy = GaussianPolicy.load(policy_dir / "policy", kind="task_policy", spec=task.spec)
    with task.make_env() as env:  # closed after: a FrankaSim env holds a franky-sim server
        data = record_failures(env, lambda obs: policy.act(obs, deterministic=True)[0], transitions,
                               np.random.default_rng(seed), task.spec, noise, max_episodes=max(200, transitions // 5),
                               guide=task.failure(env), progress=progress)
    if len(data) == 0:
        raise DataError(f"the policy in {policy_dir} never failed with action noise {noise} "
                        "(raise --noise to provoke failures)")
    return data


def policy_recovery_demos(task: Task, policy_dir: Path, clips: int, noise: float, max_steps: int, seed: int,
                          progress: bool = False) -> Transitions:
    """Scripted recovery clips from the states where the pretrained task policy, sampling its own
    actions, was 2-8 steps from an IR failure (record_policy_recoveries).  At most `clips` of
    them: a policy that rarely fails yields fewer, after at most max(200, 10 x clips) rollouts."""
    policy = GaussianPolicy.load(policy_dir / "policy", kind="task_policy", spec=task.spec)
    generator = torch.Generator().manual_seed(seed)
    with task.make_env() as env:
        return record_policy_recoveries(env, lambda obs: policy.act(obs, generator=generator)[0],
                                        task.recovery(env), clips, np.random.default_rng(seed), task.spec, noise,
                                        max_steps, max_rollouts=max(200, 10 * clips), progress=progress)


def train_policy(kind: str, data: Transitions, task: Task, config: TrainingConfig, out: Path, seed: int,
                 overwrite: bool = False, progress: bool = True) -> dict[str, Any]:
    """Offline pipeline (BC ensemble -> IQL critics -> dynamics -> Uni-O4) for a task or recovery policy."""
    out = prepare_run_dir(out, overwrite)
    with MetricsWriter(out) as log:
        policy, critics, report = train_offline_policy(data, task.spec, config.offline, seed=seed,
                                                       progress=progress, log=log)
    policy.save(out / "policy", kind=kind, extra={"seed": seed, "report": report}, overwrite=overwrite)
    critics.save(out / "critics", overwrite=overwrite)
    write_json(out / "report.json", {"kind": kind, "seed": seed, "task": task.spec.name, **report})
    return report


def train_world_model_job(data: Transitions, task: Task, config: TrainingConfig, out: Path, seed: int,
                          overwrite: bool = False, progress: bool = True) -> dict[str, Any]:
    """Fit the world model (Eq. 4) and log every step's losses to metrics.csv and TensorBoard."""
    out = prepare_run_dir(out, overwrite)
    model, history = train_world_model(data, task.spec, config.world_model, seed=seed, progress=progress)
    model.save(out / "world_model", overwrite=overwrite)
    with MetricsWriter(out) as log:
        for step, losses in enumerate(history):
            log("world_model", step, losses)
    report = {"kind": "world_model", "seed": seed, "transitions": len(data), "failures": int(data.cost.sum()),
              "final_losses": history[-1]}
    write_json(out / "report.json", report)
    return report


def train_fosp_job(data: Transitions, task: Task, config: TrainingConfig, out: Path, seed: int,
                   overwrite: bool = False, progress: bool = True,
                   feasible_for: Callable[[ReachabilityCritic], float] | None = None) -> dict[str, Any]:
    """FOSP's offline phase (farl/fosp.py) on task + recovery + failure demos: policy/, critics/,
    reachability/, report.json and every step's losses in metrics.csv."""
    out = prepare_run_dir(out, overwrite)
    with MetricsWriter(out) as log:
        models, report = train_fosp(data, task.spec, config.fosp, seed=seed, progress=progress, log=log,
                                    feasible_for=feasible_for)
    models.save(out, extra={"seed": seed}, overwrite=overwrite)
    write_json(out / "report.json", {"kind": "fosp", "seed": seed, "task": task.spec.name, **report})
    return report


def build_critic(task: Task, world_model_dir: Path, policy_dir: Path, config: TrainingConfig,
                 kind: str = "task_policy") -> tuple[GaussianPolicy, SafetyCritic]:
    policy = GaussianPolicy.load(policy_dir / "policy", kind=kind, spec=task.spec)
    model = WorldModel.load(world_model_dir / "world_model", spec=task.spec)
    return policy, SafetyCritic(model, policy, config.safety_critic)


def calibrate_job(task: Task, world_model_dir: Path, policy_dir: Path, data: Transitions, config: TrainingConfig,
                  target_recall: float, out: Path | None, max_false_alarm: float = 1.0) -> CalibrationReport:
    """Pick eps_safe on held-out data for a target failure recall (under an optional false-alarm cap);
    report precision/recall/false alarms/AUROC."""
    _, critic = build_critic(task, world_model_dir, policy_dir, config)
    report = calibrate(critic, data, target_recall=target_recall, max_false_alarm=max_false_alarm)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_json(out, {"target_recall": target_recall, "max_false_alarm": max_false_alarm, **asdict(report)})
    return report


@dataclass(frozen=True)
class FinetuneInputs:
    task_policy: Path | None      # run dir of `farl train task-policy` (policy/ + critics/); None with fosp
    recovery_policy: Path | None  # run dir of `farl train recovery-policy`; None: no shield
    world_model: Path | None      # run dir of `farl train world-model`; None: no shield
    fosp: Path | None = None      # run dir of `farl train fosp`: FOSP's policy expansion instead


def finetune_job(task: Task, inputs: FinetuneInputs, config: TrainingConfig, out: Path, steps: int, num_envs: int,
                 seed: int, overwrite: bool = False, progress: bool = True) -> OnlineResult:
    """Online PPO from the offline task policy and V, with the shield when its models are given; or
    FOSP's online phase from a `farl train fosp` directory."""
    out = prepare_run_dir(out, overwrite)
    shield: ActionFilter | None = None
    if inputs.fosp is not None:
        policy, value, shield = fosp_finetuner_parts(FOSPModels.load(inputs.fosp, spec=task.spec), config.fosp, seed)
    else:
        policy = GaussianPolicy.load(inputs.task_policy / "policy", kind="task_policy", spec=task.spec)
        value = copy.deepcopy(ValueCritics.load(inputs.task_policy / "critics", spec=task.spec).v)
    if inputs.fosp is None and inputs.world_model is not None and inputs.recovery_policy is not None:
        recovery = GaussianPolicy.load(inputs.recovery_policy / "policy", kind="recovery_policy", spec=task.spec)
        model = WorldModel.load(inputs.world_model / "world_model", spec=task.spec)
        shield = Shield(SafetyCritic(model, policy, config.safety_critic), recovery, config.shield)
    torch.manual_seed(seed)
    total_updates = max(1, steps // config.ppo.rollout_steps)
    finetuner = OnlineFinetuner(policy, value, config.ppo, total_updates, shield=shield, seed=seed)
    result = run_online(task.make_env, finetuner, steps, num_envs=num_envs, seed=seed, log_dir=out,
                        progress=progress)
    policy.save(out / "policy", kind="task_policy", extra={"seed": seed, "online_steps": steps})
    summary = {"task": task.spec.name, "seed": seed, "steps": steps, "shield": shield is not None,
               "method": "fosp" if inputs.fosp is not None else "farl" if shield is not None else "uni-o4",
               "episodes": len(result.episodes), "failure_episodes": result.failure_episodes,
               "mean_return_last_20": result.mean_return(20), "mean_return": result.mean_return(),
               "overrides": int(sum(e.overrides for e in result.episodes))}
    write_json(out / "summary.json", summary)
    plot_online(result, out / "online.png", title=f"{task.spec.name} fine-tuning (seed {seed})")
    return result


def plot_online(result: OnlineResult, path: Path, title: str) -> None:
    """Return per episode and cumulative failure episodes against env steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.array([e.env_steps for e in result.episodes])
    fig, (ax_ret, ax_fail) = plt.subplots(1, 2, figsize=(10, 3.5))
    if len(steps):
        ax_ret.plot(steps, [e.ret for e in result.episodes], lw=0.6, alpha=0.5)
        ax_fail.plot(steps, np.cumsum([e.ir_failure for e in result.episodes]))
    ax_ret.set(xlabel="env steps", ylabel="episode return")
    ax_fail.set(xlabel="env steps", ylabel="failure episodes (cumulative)")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
