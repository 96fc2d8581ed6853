"""Probe (issue 16): how much of a shielded method's first policy gradient comes from the recovery rows?

With `update_with: executed` (FARL's action correction) a step the shield overrode is stored with the
recovery's action and its log-probability under the task policy.  This collects one rollout
(`rollout_steps`) of a fresh fine-tuner on a `farl bench failurebench` output's pretraining, then compares
the gradient of the policy-gradient term (normalised advantages, ratio 1 as in PPO's first step) over
the task policy's own rows with that over the recovery rows.

    python docs/benchmarks/wall-soccer-amd-2026-12-07/gradient_share.py runs/wall fragile-push-wall farl 0
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from farl.benchmark.config import FailureBenchConfig
from farl.benchmark.methods import build_finetuner
from farl.tasks import get_task
from farl_core.config import from_mapping


def main(out: Path, task_name: str, method: str, seed: int) -> None:
    torch.set_num_threads(1)
    config = from_mapping(FailureBenchConfig, json.loads((out / "config.json").read_text())["config"],
                          where=str(out / "config.json"))
    task = get_task(task_name)
    finetuner = build_finetuner(method, task, out / task_name / "pretrain", config, 50_000, seed)
    env = task.make_env()
    obs, _ = env.reset(seed=seed)
    overridden = []
    while not finetuner.ready():
        act, verdicts = finetuner.act(obs[None])
        overridden.append(bool(verdicts and verdicts[0].overridden))
        following, rew, terminated, truncated, info = env.step(act[0])
        finetuner.observe(np.array([rew]), following[None], np.array([terminated]), np.array([truncated]),
                          np.array([float(info["cost"])]))
        obs = env.reset()[0] if terminated or truncated else following
    ppo = config.training.ppo
    data = finetuner.buffer.batch(ppo.gamma, ppo.gae_lambda)
    recovery = torch.tensor(overridden)
    adv = (data["advantage"] - data["advantage"].mean()) / (data["advantage"].std() + 1e-8)
    policy = finetuner.policy

    def gradient(rows: torch.Tensor) -> torch.Tensor:
        policy.zero_grad()
        log_prob = policy(data["obs"][rows]).log_prob(data["act"][rows]).sum(-1)
        (-(adv[rows] * log_prob).sum() / len(adv)).backward()
        return torch.cat([p.grad.flatten() for p in policy.parameters() if p.grad is not None]).clone()

    own, rec = gradient(~recovery), gradient(recovery)
    with torch.no_grad():
        nll = -policy(data["obs"]).log_prob(data["act"]).sum(-1)
    cosine = torch.nn.functional.cosine_similarity(own, own + rec, dim=0)
    print(f"{method} {task_name} seed {seed}: recovery rows {int(recovery.sum())} of {len(recovery)}; "
          f"-log pi own {nll[~recovery].mean():.2f} recovery {nll[recovery].mean():.2f}; "
          f"|grad| own {own.norm():.2f} recovery {rec.norm():.2f}; cos(own, total) {cosine:.2f}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]))
