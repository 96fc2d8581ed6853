"""Record transitions from any FARL gymnasium env: the demo generators of every sim task use this.

An env qualifies when its `info` carries `cost` (0/1 C of paper Eq. 1), as the point mass and
FailureBench envs do.  Actions get Gaussian noise and are clipped to the env's action box, as the
robot bridge clips commands.
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from farl_core.spec import TaskSpec
from farl_core.transitions import Transitions

Controller = Callable[[np.ndarray], np.ndarray]
FIELDS = ("obs", "act", "rew", "next_obs", "terminated", "truncated", "cost")


def record_episode(env: gym.Env, controller: Controller, rng: np.random.Generator, noise: float = 0.0,
                   options: dict | None = None, max_steps: int | None = None, bias: float = 0.0) -> Transitions:
    """One episode of `controller(obs) -> action` plus N(0, noise^2) action noise per step.

    `bias` adds a second, persistent perturbation: one N(0, bias^2) offset drawn per episode and
    held for all its steps.  `max_steps` cuts the episode short (marked truncated), e.g. for short
    recovery demos; the env's own time limit applies otherwise.
    """
    low, high = env.action_space.low, env.action_space.high
    rows: dict[str, list] = {k: [] for k in FIELDS}
    obs, _ = env.reset(seed=int(rng.integers(1 << 31)), options=options)
    offset = bias * rng.standard_normal(low.shape) if bias > 0 else 0.0
    t = 0
    while True:
        act = np.clip(controller(obs) + offset + noise * rng.standard_normal(low.shape), low, high
                      ).astype(np.float32)
        next_obs, rew, term, trunc, info = env.step(act)
        t += 1
        trunc = bool(trunc) or (max_steps is not None and t >= max_steps and not term)
        for key, value in zip(FIELDS, (obs, act, rew, next_obs, term, trunc, info["cost"]), strict=True):
            rows[key].append(value)
        obs = next_obs
        if term or trunc:
            return Transitions(**{k: np.asarray(v) for k, v in rows.items()})


def record_episodes(env: gym.Env, controller: Controller, episodes: int, rng: np.random.Generator, spec: TaskSpec,
                    noise: float = 0.0, options: Callable[[int], dict | None] | None = None,
                    max_steps: int | None = None, progress: bool = False, desc: str = "demos") -> Transitions:
    """`episodes` episodes back to back; `options(k)` gives episode k's reset options."""
    parts = [record_episode(env, controller, rng, noise, options(k) if options else None, max_steps)
             for k in tqdm(range(episodes), desc=desc, disable=not progress)]
    return Transitions.concat(parts).validate(spec, desc)


def record_failures(env: gym.Env, controller: Controller, transitions: int, rng: np.random.Generator,
                    spec: TaskSpec, noise: float, max_episodes: int, progress: bool = False) -> Transitions:
    """Failing episodes of a noisy controller until `transitions` are collected (paper V.A).

    The paper simulates online exploration by adding controlled noise to the offline-pretrained
    policy and keeps the failing trajectories, so the world model sees the failures fine-tuning
    will actually meet.  The noise is per-step N(0, noise^2) plus an episode-long offset of the
    same std: on FailureBench, white noise alone averages out (the noisy expert at std 1.0 failed
    1 of 50 Bounded Push and 0 of 50 Fragile Push Wall episodes), while a persistent drift, like a
    policy update gone wrong, carries the grasped object over the boundary or into the wall.
    Stops after `max_episodes` tries even if short of `transitions`, so a policy that hardly ever
    fails cannot loop forever; the caller reports the shortfall.
    """
    parts, total = [], 0
    bar = tqdm(total=transitions, desc="failure demos", unit="step", disable=not progress)
    for _ in range(max_episodes):
        episode = record_episode(env, controller, rng, noise, bias=noise)
        if episode.cost.any():
            parts.append(episode)
            total += len(episode)
            bar.update(len(episode))
        if total >= transitions:
            break
    bar.close()
    if not parts:
        return Transitions.empty(spec)
    return Transitions.concat(parts).validate(spec, "failure demos")
