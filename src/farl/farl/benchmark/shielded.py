"""How often the shield alone keeps the pretrained task policy out of failures, with no learning.

A fine-tuning run mixes two effects: how well critic and recovery catch the failures the policy
heads for, and how the policy changes while it learns from the shielded steps.  These rollouts
measure the first alone: the pretrained policy samples its actions (its own exploration noise,
what the shield meets at the start of fine-tuning) unshielded and under each shielded method's
shield, on the same episode seeds.  It reads one task's pretraining artefacts, so a recovery
policy or a critic is compared in minutes instead of a 50k-step grid.

"farl-scripted" is FARL's shield with the scripted recovery controller that wrote the recovery demos
in place of the recovery policy learned from them.  It tells the two ways a shielded failure happens
apart: if the script fails as often as the learned policy, the critic fires too late or the recovery
strategy cannot work from where it fires (more demos will not help); if the script fails less, the
recovery policy has not learned its demos.

"farl-gated" is FARL's shield with `recovery_must_lower_risk` (shield.py): it tells whether the alarms
the gate lets through unanswered were ones the recovery could not have helped with.

Each failure is also filed by who acted in the steps before it (`farl_safety.failure_kinds`): the task
policy throughout (the critic missed it), the recovery throughout (it had its time and still failed: the
recovery is the limit), or both (a late alarm, or control handed back to the task policy too soon).  The
one-off traces behind two earlier diagnoses in BENCHMARKS.md are this count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm

from farl.benchmark.config import FailureBenchConfig
from farl.benchmark.methods import build_shield
from farl.fosp import FOSPModels, fosp_finetuner_parts
from farl.tasks import get_task
from farl_core.spec import TaskSpec
from farl_policy.gaussian import GaussianPolicy
from farl_safety.failure_kinds import count_by_kind, failure_kind, override_window
from farl_safety.shield import ActionFilter, Shield
from farl_sim.recording import Controller

SHIELDED = ("farl", "rec-rl", "mppi", "fosp", "farl-scripted", "farl-gated")


def shielded_rollouts(task_name: str, root: Path, config: FailureBenchConfig, methods: Sequence[str] = SHIELDED,
                      episodes: int = 100, seed: int = 0, progress: bool = False) -> dict[str, dict[str, float]]:
    """Failure rate and override share per shield ("none": unshielded) over `episodes` episodes."""
    unknown = sorted(set(methods) - set(SHIELDED))
    if unknown:
        raise ValueError(f"no shield for method(s) {', '.join(unknown)} (shielded: {', '.join(SHIELDED)})")
    torch.set_num_threads(1)  # batch-1 inference: extra threads only spin against other work on the cores
    task = get_task(task_name)
    policy = GaussianPolicy.load(root / "task_policy" / "policy", kind="task_policy", spec=task.spec)
    results = {"none": _rollouts(task.make_env(), policy, None, episodes, seed, progress, f"{task_name} unshielded")}
    for method in methods:
        env = task.make_env()
        if method == "fosp":  # FOSP's own offline policy, alone and inside its policy expansion
            offline, _, expansion = fosp_finetuner_parts(FOSPModels.load(root / "fosp", spec=task.spec),
                                                         config.training.fosp, seed)
            results["fosp-unshielded"] = _rollouts(task.make_env(), offline, None, episodes, seed, progress,
                                                   f"{task_name} fosp policy alone")
            results[method] = _rollouts(env, offline, expansion, episodes, seed, progress, f"{task_name} fosp")
            continue
        shield = build_shield("farl" if method.startswith("farl") else method, task, root, config, policy, seed)
        if method == "farl-gated":
            shield = Shield(shield.critic, shield.recovery, replace(shield.config, recovery_must_lower_risk=True))
        if method == "farl-scripted":
            shield = Shield(shield.critic, ScriptedRecovery(task.spec, task.recovery(env)), shield.config)
        results[method] = _rollouts(env, policy, shield, episodes, seed, progress, f"{task_name} {method}")
    return results


class ScriptedRecovery:
    """A scripted recovery controller (one observation at a time) as the shield's batched recovery actor."""

    def __init__(self, spec: TaskSpec, controller: Controller) -> None:
        self.spec, self.controller = spec, controller

    def mean(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(np.stack([self.controller(row) for row in obs.numpy()]), dtype=torch.float32)


def _rollouts(env: gym.Env, policy: GaussianPolicy, shield: ActionFilter | None, episodes: int, seed: int,
              progress: bool, desc: str) -> dict[str, float]:
    """Failure rate, override share, and the failures filed by the recovery's part in the steps before them
    (`failed_unalarmed` + `failed_partly_recovered` + `failed_under_recovery` = `failure_rate`)."""
    rng, generator = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
    overrides = steps = 0
    failures: list[str] = []  # the kind of each failed episode
    for _ in tqdm(range(episodes), desc=desc, disable=not progress):
        obs, _ = env.reset(seed=int(rng.integers(1 << 31)))
        recent = override_window()
        while True:
            act = policy.act(obs, generator=generator)[0]
            overridden = False
            if shield is not None:
                executed, verdicts = shield.filter(obs[None], act[None])
                act, overridden = executed[0], bool(verdicts[0].overridden)
            overrides += overridden
            recent.append(overridden)
            obs, _, terminated, truncated, info = env.step(act)
            steps += 1
            if terminated or truncated:
                if info["ir_failure"]:
                    failures.append(failure_kind(recent))
                break
    return {"failure_rate": len(failures) / episodes, "override_share": overrides / steps, "episodes": episodes,
            **{f"failed_{kind}": n / episodes for kind, n in count_by_kind(failures).items()}}
