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
                   options: dict | None = None, max_steps: int | None = None) -> Transitions:
    """One episode of `controller(obs) -> action` plus N(0, noise^2) action noise per step.

    `max_steps` cuts the episode short (marked truncated), e.g. for short
    recovery demos; the env's own time limit applies otherwise.
    """
    low, high = env.action_space.low, env.action_space.high
    rows: dict[str, list] = {k: [] for k in FIELDS}
    obs, _ = env.reset(seed=int(rng.integers(1 << 31)), options=options)
    t = 0
    while True:
        act = np.clip(controller(obs) + noise * rng.standard_normal(low.shape), low, high
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
                    spec: TaskSpec, noise: float, max_episodes: int, guide: Controller | None = None,
                    guide_fraction: float = 0.5, handover_within: int = 100, progress: bool = False) -> Transitions:
    """Failing episodes of a noisy controller until `transitions` are collected (paper V.A).

    The paper simulates online exploration by adding controlled noise to the offline-pretrained
    policy and keeps the failing trajectories, so the world model sees the failures fine-tuning
    will actually meet.  White noise alone rarely fails a grasping policy (the scripted expert at
    std 0.3 failed 0 of 30 Fragile Push Wall episodes: the held block follows the hand's mean
    path), so with a `guide` (the task's guided-failure controller, like the operator who "guides
    the robot into various failure states" in the paper's real-robot section) a `guide_fraction`
    of the episodes hand over from the policy to the guide at a step drawn uniformly from the
    first `handover_within` (default: half FailureBench's time limit): the failure then starts
    from a state the policy itself reached.  Stops after `max_episodes` tries even if
    short of `transitions`, so a policy that hardly ever fails cannot loop forever.
    """
    parts, total = [], 0
    bar = tqdm(total=transitions, desc="failure demos", unit="step", disable=not progress)
    for _ in range(max_episodes):
        handover = int(rng.integers(handover_within)) if guide is not None and rng.random() < guide_fraction else None
        episode = record_episode(env, _handing_over(controller, guide, handover), rng, noise)
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


def _handing_over(controller: Controller, guide: Controller | None, handover: int | None) -> Controller:
    """`controller` for the first `handover` calls, `guide` after (just `controller` when handover is None)."""
    if handover is None or guide is None:
        return controller
    calls = iter(range(1 << 30))
    return lambda obs: controller(obs) if next(calls) < handover else guide(obs)
