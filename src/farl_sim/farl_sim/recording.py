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
    obs, _ = env.reset(seed=int(rng.integers(1 << 31)), options=options)
    return record_from(env, obs, controller, rng, noise, max_steps)


def record_from(env: gym.Env, obs: np.ndarray, controller: Controller, rng: np.random.Generator,
                noise: float = 0.0, max_steps: int | None = None) -> Transitions:
    """`record_episode` from the env's current state (`obs`) instead of a reset."""
    low, high = env.action_space.low, env.action_space.high
    rows: dict[str, list] = {k: [] for k in FIELDS}
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


def record_policy_recoveries(env: gym.Env, policy: Controller, recovery: Controller, clips: int,
                             rng: np.random.Generator, spec: TaskSpec, noise: float, max_steps: int,
                             lead: tuple[int, int] = (2, 8), max_lead: int = 32, max_rollouts: int = 500,
                             progress: bool = False) -> Transitions:
    """Recovery clips that start where `policy` itself was about to fail; at most `clips` of them.

    Sampled near-failure starts (reset option near_failure) cover the arrangements a person
    thought of; the shield fires wherever the task policy heads into a failure, often with the
    object held, moving, at other heights.  Here each rollout of `policy` (pass a sampling one:
    its own exploration noise is what the shield meets online) that ends in an IR failure at step
    T is replayed from the same seed with the same actions up to step T - k, k uniform in `lead`,
    and the scripted `recovery` plus N(0, noise^2) is recorded from there for at most `max_steps`
    steps.  A demonstration shows an escape, so when the recovery still fails, k doubles (up to
    `max_lead`) and the clip is recorded again from the earlier state: the clip starts near the
    latest point the scripted recovery can still escape from (on Bounded Soccer none of 8 tried
    escaped from 2-8 steps ahead, 3 of 8 from 10-25).  Stops after `max_rollouts` rollouts, so a
    policy that rarely fails returns fewer clips.  Replay needs an env that is deterministic given
    seed and actions (MuJoCo is).
    """
    parts: list[Transitions] = []
    bar = tqdm(total=clips, desc="recovery demos (policy)", disable=not progress)
    for _ in range(max_rollouts):
        if len(parts) >= clips:
            break
        seed = int(rng.integers(1 << 31))
        obs, _ = env.reset(seed=seed)
        rollout = record_from(env, obs, policy, rng)
        if not rollout.cost.any():
            continue
        failed_at, k = int(np.argmax(rollout.cost > 0)), int(rng.integers(lead[0], lead[1] + 1))
        while k <= max_lead and failed_at - k >= 0:
            clip = record_from(env, _replay(env, seed, rollout, failed_at - k, spec), recovery, rng, noise, max_steps)
            if not clip.cost.any():
                parts.append(clip)
                bar.update()
                break
            k *= 2
    bar.close()
    if not parts:
        return Transitions.empty(spec)
    return Transitions.concat(parts).validate(spec, "recovery demos")


def _replay(env: gym.Env, seed: int, rollout: Transitions, steps: int, spec: TaskSpec) -> np.ndarray:
    """Reset with `seed` and repeat the rollout's first `steps` actions; the observation reached."""
    obs, _ = env.reset(seed=seed)
    for act in rollout.act[:steps]:
        obs = env.step(act)[0]
    if not np.array_equal(obs, rollout.obs[steps]):
        raise RuntimeError(f"{spec.name}: replaying a rollout from its seed reached another state; recovery "
                           "clips from policy rollouts need an env that is deterministic given seed and actions")
    return obs


def _handing_over(controller: Controller, guide: Controller | None, handover: int | None) -> Controller:
    """`controller` for the first `handover` calls, `guide` after (just `controller` when handover is None)."""
    if handover is None or guide is None:
        return controller
    calls = iter(range(1 << 30))
    return lambda obs: controller(obs) if next(calls) < handover else guide(obs)
