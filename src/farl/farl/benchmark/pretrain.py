"""Everything a FailureBench task needs before fine-tuning, built once per task and reused by every run.

Stages, in order, each skipped when its output already exists (so an interrupted grid resumes):

  demos/task                   noisy scripted expert (Minari dataset)
  task_policy                  the offline pipeline (BC ensemble -> IQL -> dynamics -> Uni-O4)
  demos/recovery               scripted recoveries, a share of them from where the task policy was
                               about to fail, the rest from sampled near-failure starts
  recovery_policy              the same offline pipeline on the recovery demos
  demos/failure                failing episodes of the pretrained task policy with action noise
  world_model                  trained on task demos + the training share of the failure episodes
  baselines                    the Rec-RL Q-risk critic, trained on the same data
  calibration.json             eps_safe of each critic for the target recall on held-out failures
  reference.json               expert return (normalised 100) and the pretrained policy's return
  fosp                         only for the fosp method: FOSP's offline phase on task + recovery +
                               the training share of the failure demos, its policy's own return
                               in fosp/reference.json

All methods of the grid but FOSP fine-tune the same pretrained task policy, as in the paper; FOSP
trains its own offline policy from the same demonstrations (its offline phase is part of the method).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from farl.benchmark.config import FailureBenchConfig
from farl.fosp import FOSPModels
from farl.tasks import Task, get_task
from farl.training import (
    policy_failure_demos,
    policy_recovery_demos,
    save_data,
    train_fosp_job,
    train_policy,
    train_world_model_job,
    write_json,
)
from farl_core.datasets import load_dataset
from farl_core.transitions import Transitions
from farl_policy.gaussian import GaussianPolicy
from farl_safety.calibration import CalibrationReport, calibrate
from farl_safety.reachability import ReachabilityCritic
from farl_safety.recovery_rl import QRiskCritic, train_q_risk
from farl_safety.safety_critic import SafetyCritic
from farl_safety.shield import ActionFilter
from farl_safety.world_model import WorldModel
from farl_sim.recording import Controller, record_episodes

EVAL_SEED = 10_000  # evaluation episodes use their own seeds, identical for every method and run


def pretrain(task_name: str, root: Path, config: FailureBenchConfig, progress: bool = False,
             fosp: bool = False) -> Path:
    """Build (or finish building) the pretraining artefacts of one task under `root` (with FOSP's
    offline phase when `fosp`); return `root`."""
    task = get_task(task_name)
    demos, training = config.demos, config.training
    root.mkdir(parents=True, exist_ok=True)
    _stage(root / "demos" / "task", lambda path: save_data(
        task.scripted("task", demos.task_episodes, 0, demos.task_noise, progress=progress), path, task, "task"))
    task_data = load_dataset(root / "demos" / "task", task.spec)[0]
    _stage(root / "task_policy", lambda path: train_policy(
        "task_policy", task_data, task, training, path, seed=0, progress=progress))
    _stage(root / "demos" / "recovery", lambda path: save_data(
        recovery_demos(task, root / "task_policy", config, progress), path, task, "recovery"))
    _stage(root / "recovery_policy", lambda path: train_policy(
        "recovery_policy", load_dataset(root / "demos" / "recovery", task.spec)[0], task, training, path, seed=0,
        progress=progress))
    _stage(root / "demos" / "failure", lambda path: save_data(
        policy_failure_demos(task, root / "task_policy", demos.failure_noise, demos.failure_transitions, seed=2,
                             progress=progress), path, task, "failure"))
    fit, heldout = split_episodes(load_dataset(root / "demos" / "failure", task.spec)[0], demos.heldout_fraction)
    model_data = Transitions.concat([task_data, fit])
    _stage(root / "world_model", lambda path: train_world_model_job(
        model_data, task, training, path, seed=0, progress=progress))
    policy = GaussianPolicy.load(root / "task_policy" / "policy", kind="task_policy", spec=task.spec)
    _stage(root / "q_risk", lambda path: train_q_risk(
        model_data, task.spec, policy, config.recovery_rl, seed=0, progress=progress).save(path))
    _stage(root / "calibration.json", lambda path: write_json(path, _calibrate(root, task, policy, heldout, config)))
    _stage(root / "reference.json", lambda path: write_json(path, _references(task, policy, config)))
    if fosp:
        recovery_data = load_dataset(root / "demos" / "recovery", task.spec)[0]
        _stage(root / "fosp", lambda path: train_fosp_job(
            Transitions.concat([task_data, recovery_data, fit]), task, training, path, seed=0, progress=progress,
            feasible_for=lambda ref: _calibrate_reachability(ref, heldout, config).eps_safe))
        _stage(root / "fosp" / "reference.json", lambda path: write_json(path, _fosp_references(
            task, FOSPModels.load(root / "fosp", spec=task.spec), heldout, config)))
    return root


def recovery_demos(task: Task, policy_dir: Path, config: FailureBenchConfig, progress: bool = False) -> Transitions:
    """`recovery_episodes` scripted recovery clips: up to the `recovery_from_policy` share from the
    pretrained policy's own near-failures, the rest from sampled near-failure starts.

    Why both: the sampled starts alone miss where the policy actually fails.  On Obstructed Push,
    under FARL's shield, 12 of 100 rollouts of the pretrained policy failed with this mix against
    34 of 100 with 120 sampled starts (`farl bench shielded`, BENCHMARKS.md).
    """
    demos = config.demos
    wanted = round(demos.recovery_from_policy * demos.recovery_episodes)
    parts = []
    if wanted:
        parts.append(policy_recovery_demos(task, policy_dir, wanted, demos.recovery_noise, demos.recovery_steps,
                                           seed=1, progress=progress))
    rest = demos.recovery_episodes - sum(len(p.episode_slices()) for p in parts)
    if rest:
        parts.append(task.scripted("recovery", rest, 1, demos.recovery_noise, demos.recovery_steps, progress=progress))
    return Transitions.concat(parts)


def split_episodes(data: Transitions, heldout_fraction: float) -> tuple[Transitions, Transitions]:
    """(fit, held-out) by whole episodes, the last `heldout_fraction` of them held out (at least one)."""
    episodes = data.episode_slices()
    keep = max(1, min(len(episodes) - 1, round(len(episodes) * (1.0 - heldout_fraction))))
    cut = episodes[keep].start if keep < len(episodes) else len(data)
    return data.subset(slice(0, cut)), data.subset(slice(cut, len(data)))


def evaluate(task: Task, controller_for: Callable[[gym.Env], Controller], episodes: int) -> dict[str, float]:
    """Mean return and failure rate of a deterministic controller on the evaluation seeds."""
    env = task.make_env()
    data = record_episodes(env, controller_for(env), episodes, np.random.default_rng(EVAL_SEED), task.spec)
    slices = data.episode_slices()
    return {"return": float(np.mean([data.rew[s].sum() for s in slices])),
            "failure_rate": float(np.mean([data.cost[s].any() for s in slices])),
            "episodes": len(slices)}


def policy_controller(policy: GaussianPolicy) -> Callable[[gym.Env], Controller]:
    """The policy's deterministic (mean) action, as a controller for any env instance."""
    return lambda env: lambda obs: policy.act(obs, deterministic=True)[0]


def filtered_controller(policy: GaussianPolicy, action_filter: ActionFilter) -> Callable[[gym.Env], Controller]:
    """The policy's mean action passed through an action filter (a shield, FOSP's policy expansion):
    the fine-tuned policy as its method deploys it."""
    def control(obs: np.ndarray) -> np.ndarray:
        proposed = policy.act(obs, deterministic=True)[0]
        return action_filter.filter(obs[None], proposed[None])[0][0]
    return lambda env: control


def load_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _stage(path: Path, build) -> None:
    """Run `build(path)` unless `path` already exists: the unit of resumption."""
    if not path.exists():
        build(path)


def _calibrate(root: Path, task: Task, policy: GaussianPolicy, heldout: Transitions,
               config: FailureBenchConfig) -> dict[str, Any]:
    """eps_safe for the target recall (under the false-alarm cap) of the world-model critic and Q-risk,
    both on the same failure window (`calibration_window`, default the critic's H)."""
    training = config.training
    model = WorldModel.load(root / "world_model" / "world_model", spec=task.spec)
    with torch.inference_mode():
        world_model = calibrate(SafetyCritic(model, policy, training.safety_critic), heldout, config.target_recall,
                                horizon=_label_window(config), max_false_alarm=config.max_false_alarm)
        q_risk = calibrate(QRiskCritic.load(root / "q_risk", spec=task.spec), heldout, config.target_recall,
                           horizon=_label_window(config), max_false_alarm=config.max_false_alarm)
    return {"target_recall": config.target_recall, "max_false_alarm": config.max_false_alarm,
            "world_model": asdict(world_model), "q_risk": asdict(q_risk)}


def _calibrate_reachability(ref: ReachabilityCritic, heldout: Transitions,
                            config: FailureBenchConfig) -> CalibrationReport:
    """FOSP's feasibility threshold on Q_ref for the same target recall, window and false-alarm cap
    as the other critics, so every shielded method is compared at one operating point."""
    with torch.inference_mode():
        return calibrate(ref, heldout, config.target_recall, horizon=_label_window(config),
                         max_false_alarm=config.max_false_alarm)


def _label_window(config: FailureBenchConfig) -> int:
    """Steps ahead within which a held-out failure makes a pair positive, the same for every critic."""
    window = config.calibration_window
    return config.training.safety_critic.horizon if window is None else window


def _fosp_references(task: Task, models: FOSPModels, heldout: Transitions,
                     config: FailureBenchConfig) -> dict[str, Any]:
    """FOSP's offline policy's own return (its fine-tuning starts there) and its REF's calibration."""
    return {"pretrained": evaluate(task, policy_controller(models.policy), config.eval_episodes),
            "calibration": asdict(_calibrate_reachability(models.reachability, heldout, config))}


def _references(task: Task, policy: GaussianPolicy, config: FailureBenchConfig) -> dict[str, Any]:
    return {"expert": evaluate(task, task.expert, config.expert_episodes),
            "pretrained": evaluate(task, policy_controller(policy), config.eval_episodes)}
