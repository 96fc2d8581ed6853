"""`farl bench ...`: speed figures for BENCHMARKS.md, each next to a reference timed in the same run.

Machines here are shared and noisy, so every figure is reported with a same-run reference
(a ratio), never checked by a timed assertion in the tests.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from farl.tasks import get_task
from farl.training import TrainingConfig
from farl_core.transitions import Transitions
from farl_policy.bc import train_bc_ensemble
from farl_policy.critics import train_critics
from farl_policy.dynamics import train_dynamics
from farl_policy.gaussian import GaussianPolicy
from farl_safety.safety_critic import SafetyCritic
from farl_safety.shield import Shield
from farl_safety.world_model import WorldModel, train_world_model


def percentiles(samples_s: list[float], qs: tuple[int, ...] = (50, 99)) -> dict[str, float]:
    """{"p50_ms": ..., ...} of durations given in seconds."""
    ms = np.asarray(samples_s) * 1e3
    return {f"p{q}_ms": float(np.percentile(ms, q)) for q in qs}


def bench_shield(horizons: tuple[int, ...] = (5, 10), calls: int = 2000, task_name: str = "point-mass",
                 config: TrainingConfig | None = None) -> dict[str, Any]:
    """Shield decision latency at batch 1 on one CPU thread vs one task-policy forward pass.

    Network sizes are the configured defaults; the weights are untrained, which does not change
    the arithmetic done per call.
    """
    config = config or TrainingConfig()
    torch.set_num_threads(1)
    task = get_task(task_name)
    policy = GaussianPolicy(task.spec, config.offline.policy).eval()
    recovery = GaussianPolicy(task.spec, config.offline.policy).eval()
    obs = np.zeros((1, task.spec.obs_dim), dtype=np.float32)
    act = np.zeros((1, task.spec.act_dim), dtype=np.float32)

    def timed(fn) -> list[float]:
        for _ in range(50):
            fn()
        samples = []
        for _ in range(calls):
            start = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - start)
        return samples

    obs_t = torch.as_tensor(obs)
    with torch.inference_mode():
        reference = percentiles(timed(lambda: policy.mean(obs_t)))
    results: dict[str, Any] = {"threads": torch.get_num_threads(), "calls": calls,
                               "policy_forward": reference, "shield": {}}
    for horizon in horizons:
        model = WorldModel(task.spec, replace(config.world_model, horizon=horizon)).eval()
        critic = SafetyCritic(model, policy, replace(config.safety_critic, horizon=horizon))
        shield = Shield(critic, recovery, config.shield)
        figures = percentiles(timed(lambda shield=shield: shield.filter(obs, act)))
        figures["p99_ratio_to_policy_forward"] = figures["p99_ms"] / reference["p99_ms"]
        results["shield"][f"H={horizon}"] = figures
    return results


def bench_training(steps: int = 200, task_name: str = "point-mass",
                   config: TrainingConfig | None = None) -> dict[str, Any]:
    """Offline training throughput (samples/s = steps x batch / wall time) of each model."""
    config = config or TrainingConfig()
    torch.set_num_threads(2)
    task = get_task(task_name)
    data = Transitions.concat([task.demonstrations("task", 30, 0), task.demonstrations("failure", 100, 1)])
    off = config.offline
    jobs = {
        "bc_ensemble": (lambda: train_bc_ensemble(data, task.spec, off.policy, replace(off.bc, steps=steps)),
                        steps * off.bc.batch_size * off.bc.ensemble_size),
        "iql_critics": (lambda: train_critics(data, task.spec, replace(off.critics, steps=steps)),
                        steps * off.critics.batch_size),
        "dynamics_ensemble": (lambda: train_dynamics(data, task.spec, replace(off.dynamics, steps=steps)),
                              steps * off.dynamics.batch_size),
        "world_model": (lambda: train_world_model(data, task.spec, replace(config.world_model, steps=steps)),
                        steps * config.world_model.batch_size),
    }
    results = {}
    for name, (job, samples) in jobs.items():
        start = time.perf_counter()
        job()
        wall = time.perf_counter() - start
        results[name] = {"samples_per_s": samples / wall, "wall_s": wall, "steps": steps}
    return results
