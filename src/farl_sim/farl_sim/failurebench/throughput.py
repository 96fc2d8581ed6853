"""Throughput of the FailureBench envs: wrapper overhead against bare MetaWorld, and vectorised envs.

Why: online fine-tuning runs 10^6 env steps per task (paper V.B); the IR-failure checks (every
substep) and the observation conversion must cost little next to MetaWorld's own step, and the
vector setup decides how many envs PPO collects from.  Random actions, resets every 200 steps.

    python -m farl_sim.failurebench.throughput [steps]
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from metaworld.env_dict import ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE

from farl_sim.failurebench.env import FailureBenchEnv
from farl_sim.failurebench.geometry import DEFAULT_MAX_EPISODE_STEPS
from farl_sim.failurebench.registry import TASKS


def _single_env_rate(env: gym.Env, steps: int, rng: np.random.Generator) -> float:
    """Env steps per second, resetting every DEFAULT_MAX_EPISODE_STEPS steps whatever happens.

    The fixed schedule (no reset on an IR failure) gives bare and wrapped env the same number of
    resets, so their ratio is the per-step cost of the wrapper, not of extra resets.
    """
    env.reset(seed=0)
    start = time.perf_counter()
    for step in range(1, steps + 1):
        env.step(rng.uniform(-1.0, 1.0, 4).astype(np.float32))
        if step % DEFAULT_MAX_EPISODE_STEPS == 0:
            env.reset()
    return steps / (time.perf_counter() - start)


def _vector_rate(envs: gym.vector.VectorEnv, steps: int, rng: np.random.Generator) -> float:
    """Env steps per second summed over the sub-envs (autoreset happens inside the vector env)."""
    envs.reset(seed=0)
    batches = max(1, steps // envs.num_envs)
    start = time.perf_counter()
    for _ in range(batches):
        envs.step(rng.uniform(-1.0, 1.0, (envs.num_envs, 4)).astype(np.float32))
    rate = batches * envs.num_envs / (time.perf_counter() - start)
    envs.close()
    return rate


def bench_envs(steps: int = 2000, vector_task: str = "bounded-push") -> dict[str, Any]:
    """Steps/s of every FailureBench env against the bare MetaWorld env it wraps, and of vector envs.

    Returns {"steps", "tasks": {name: {"metaworld", "failurebench", "ratio"}}, "vector": {...}}.
    The bare env is MetaWorld's goal-observable class (Obstructed Push compares against plain
    push-v3, so its ratio includes the vase).  Vector figures are total env steps/s of
    `vector_task`; "*_speedup" is relative to one FailureBenchEnv in the same run.  The async
    workers are spawned, not forked, so a parent that has started torch threads cannot deadlock them.
    """
    rng = np.random.default_rng(0)
    tasks: dict[str, dict[str, float]] = {}
    for name, task in TASKS.items():
        bare = ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE[f"{task.metaworld_name}-goal-observable"](seed=0)
        bare.max_path_length = sys.maxsize  # we reset every 200 steps ourselves
        metaworld_rate = _single_env_rate(bare, steps, rng)
        failurebench_rate = _single_env_rate(FailureBenchEnv(name), steps, rng)
        tasks[name] = {"metaworld": round(metaworld_rate, 1), "failurebench": round(failurebench_rate, 1),
                       "ratio": round(failurebench_rate / metaworld_rate, 3)}
    make: Callable[[], gym.Env] = functools.partial(FailureBenchEnv, vector_task)
    single = _single_env_rate(make(), steps, rng)
    sync4 = _vector_rate(gym.vector.SyncVectorEnv([make] * 4), steps, rng)
    async2 = _vector_rate(gym.vector.AsyncVectorEnv([make] * 2, context="spawn"), steps, rng)
    vector = {"task": vector_task, "single": round(single, 1), "sync_4": round(sync4, 1),
              "sync_4_speedup": round(sync4 / single, 3), "async_2": round(async2, 1),
              "async_2_speedup": round(async2 / single, 3)}
    return {"steps": steps, "tasks": tasks, "vector": vector}


if __name__ == "__main__":
    print(json.dumps(bench_envs(int(sys.argv[1]) if len(sys.argv) > 1 else 2000), indent=2))
