"""Probe (issue 16), not a shipped option: how much of C_H's alarm comes from imagining the future?

Calibrates the world-model critic of a `farl bench failurebench` pretraining on its held-out failure
demos (10-step window, target recall and false-alarm cap of the output's `config.json`, as the shipped
calibration does) for several imagination settings:

  H       imagined steps after the proposed action (H = 0: the constraint head on (s_t, a_t) alone);
  sigma   std of the Gaussian noise added to the task policy's mean action at each imagined step
          (0: the shipped critic; 0.30: the fine-tuning's exploration std), K fixed noise draws
          (common random numbers, so the score stays a deterministic function);
  reduce  mean over the K draws (Eq. 1's expectation over pi) or their max.

    python docs/benchmarks/probes-amd-2026-12-07-night/imagination_probe.py OUT fragile-push-wall

H = 3, sigma 0 reproduces the shipped calibration.json to the digit (the check that this rollout is C_H).
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import torch

from farl.benchmark.config import FailureBenchConfig
from farl.benchmark.pretrain import split_episodes
from farl.tasks import get_task
from farl_core.config import from_mapping
from farl_core.datasets import load_dataset
from farl_policy.gaussian import GaussianPolicy
from farl_safety.calibration import calibrate
from farl_safety.world_model import WorldModel

SETTINGS = [(0, 1, 0.0, "mean"), (1, 1, 0.0, "mean"), (3, 1, 0.0, "mean"), (5, 1, 0.0, "mean"),
            (3, 16, 0.3, "mean"), (5, 16, 0.3, "mean"), (3, 16, 0.45, "mean"), (3, 16, 0.3, "max")]


class ImaginedRisk:
    """C_H of Eq. 1 by the world model's readable rollout, with noisy task actions after a_t."""

    def __init__(self, model: WorldModel, policy: GaussianPolicy, horizon: int, gamma_risk: float, draws: int,
                 sigma: float, reduce: str) -> None:
        self.model, self.policy, self.spec = model.eval(), policy, model.spec
        self.horizon, self.draws, self.sigma, self.reduce = horizon, draws, sigma, reduce
        self.discount = gamma_risk ** torch.arange(horizon + 1, dtype=torch.float32)
        self.noise = torch.randn(draws, horizon, self.spec.act_dim, generator=torch.Generator().manual_seed(0))
        self.low = torch.tensor(self.spec.action_low, dtype=torch.float32)
        self.high = torch.tensor(self.spec.action_high, dtype=torch.float32)

    @torch.inference_mode()
    def risk(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        rows = obs.shape[0]
        z = self.model.encode(obs).repeat(self.draws, 1)
        a = torch.maximum(torch.minimum(act, self.high), self.low).repeat(self.draws, 1)
        latents, actions = [z], [a]
        for step in range(self.horizon):
            z = self.model.next(z, a)
            noisy = self.policy.mean(self.model.decode(z)) + self.sigma * self.noise[:, step].repeat_interleave(rows, 0)
            a = torch.maximum(torch.minimum(noisy, self.high), self.low)
            latents.append(z)
            actions.append(a)
        probability = torch.sigmoid(self.model.constraint_logit(torch.stack(latents), torch.stack(actions)))
        per_draw = (self.discount[:, None] * probability).sum(0).reshape(self.draws, rows)
        return per_draw.mean(0) if self.reduce == "mean" else per_draw.max(0).values


def main(out: Path, task_name: str) -> None:
    torch.set_num_threads(1)
    config = from_mapping(FailureBenchConfig, json.loads((out / "config.json").read_text())["config"],
                          where=str(out / "config.json"))
    task, root = get_task(task_name), out / task_name / "pretrain"
    _, heldout = split_episodes(load_dataset(root / "demos" / "failure", task.spec)[0], config.demos.heldout_fraction)
    policy = GaussianPolicy.load(root / "task_policy" / "policy", kind="task_policy", spec=task.spec)
    model = WorldModel.load(root / "world_model" / "world_model", spec=task.spec)
    gamma_risk = config.training.safety_critic.gamma_risk
    print("| task | H | sigma x K | reduce | AUROC | eps_safe | precision | recall | false alarm | median lead | "
          "alarmed >= 10 steps ahead |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for horizon, draws, sigma, reduce in SETTINGS:
        critic = ImaginedRisk(model, policy, horizon, gamma_risk, draws, sigma, reduce)
        report = asdict(calibrate(critic, heldout, config.target_recall, horizon=config.calibration_window,
                                  max_false_alarm=config.max_false_alarm))
        print(f"| {task_name} | {horizon} | {sigma} x {draws} | {reduce} | {report['auroc']:.3f} | "
              f"{report['eps_safe']:.4g} | {report['precision']:.3f} | {report['recall']:.3f} | "
              f"{report['false_alarm']:.3f} | {report['median_lead']:.1f} | {report['early_alarm_share']:.2f} |",
              flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
