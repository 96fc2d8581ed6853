"""Probe (issue 16), not a shipped option: FARL whose recovery rows get a gradient-norm budget.

In each PPO minibatch the policy-gradient term over the rows whose action the shield replaced
(action correction) and the term over the task policy's own rows are clipped separately, each to
`max_grad_norm` times its share of the minibatch's rows, then summed; everything else is FARL as
configured.  It patches farl internals in this process only, so it reads as a probe, not as code to keep:
if the idea pays, it belongs in `PPO` with a `corrected` mask in the rollout buffer.

    python docs/benchmarks/wall-soccer-amd-2026-12-07/gradient_budget_probe.py OUT fragile-push-wall 0 1

OUT is a `farl bench failurebench` output folder whose `<task>/pretrain` and `config.json` are used;
the runs are written to OUT/<task>/farl/seed<N>/ as the grid would.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

import farl.online as online
import farl_policy.ppo as ppo
from farl.benchmark.config import FailureBenchConfig
from farl.benchmark.grid import Run, run_one
from farl_core.config import from_mapping

_record, _update, _batch = online.OnlineFinetuner.record, online.OnlineFinetuner.update, ppo.RolloutBuffer.batch
_CORRECTED: list[torch.Tensor] = []  # the rows of the rollout being trained on: True where the shield replaced


def record(self, obs, proposed, proposed_log_prob, executed) -> None:
    _record(self, obs, proposed, proposed_log_prob, executed)
    self.__dict__.setdefault("corrected", []).append(~np.all(np.asarray(executed) == np.asarray(proposed), axis=-1))


def update(self) -> dict[str, float]:
    _CORRECTED[:] = [torch.as_tensor(np.stack(self.corrected).reshape(-1))]
    self.corrected = []
    return _update(self)


def batch(self, gamma: float, lam: float) -> dict[str, torch.Tensor]:
    data = _batch(self, gamma, lam)
    data["learn"] = 1.0 + _CORRECTED[0].float()  # every row learns; 2 marks a corrected one
    return data


def policy_step(self, mb: dict[str, torch.Tensor], stats: dict[str, list[float]]) -> None:
    cfg = self.config
    adv = (mb["advantage"] - mb["advantage"].mean()) / (mb["advantage"].std() + 1e-8)
    corrected = mb["learn"] > 1.5
    ratio = (self.policy(mb["obs"]).log_prob(mb["act"]).sum(-1) - mb["log_prob"]).exp()
    per_row = -torch.min(ratio * adv, ratio.clamp(1 - cfg.clip_eps, 1 + cfg.clip_eps) * adv) / len(adv)
    params = [p for p in self.policy.parameters() if p.requires_grad]
    total = [torch.zeros_like(p) for p in params]
    for rows in (~corrected, corrected):
        if not bool(rows.any()):
            continue
        grads = torch.autograd.grad(per_row[rows].sum(), params, retain_graph=True, allow_unused=True)
        grads = [torch.zeros_like(p) if g is None else g for g, p in zip(grads, params, strict=True)]
        budget = cfg.max_grad_norm * float(rows.float().mean())
        scale = min(1.0, budget / (float(torch.sqrt(sum((g ** 2).sum() for g in grads))) + 1e-12))
        total = [t + scale * g for t, g in zip(total, grads, strict=True)]
    self.policy_optim.zero_grad()
    for p, g in zip(params, total, strict=True):
        p.grad = g
    self.policy_optim.step()
    stats["policy_loss"].append(float(per_row.sum().detach()))


def main(out: Path, task: str, seeds: list[int]) -> None:
    online.OnlineFinetuner.record, online.OnlineFinetuner.update = record, update
    ppo.RolloutBuffer.batch, ppo.PPO._policy_step = batch, policy_step
    ppo._policy_rows = lambda mb: mb  # keep the marker column in the minibatch
    torch.set_num_threads(1)
    config = from_mapping(FailureBenchConfig, json.loads((out / "config.json").read_text())["config"],
                          where=str(out / "config.json"))
    for seed in seeds:
        summary = run_one(Run(task, "farl", seed), out, 50_000, config)
        print(f"seed {seed}: {summary['failure_episodes']} failure episodes, normalised return "
              f"{summary['normalised_after']:.1f}, as deployed {summary['normalised_after_deployed']:.1f}", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], [int(s) for s in sys.argv[3:]])
