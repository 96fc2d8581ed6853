"""Recovery clips from a policy's own near-failures: they start 2-8 steps before the failure the
policy was heading for, never fail themselves, and refuse an env that cannot be replayed."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from farl_core.spec import TaskSpec
from farl_sim import point_mass
from farl_sim.failurebench import FailureBenchEnv, failure_action, recovery_action
from farl_sim.recording import record_policy_recoveries


def steps_to_failure(obs: np.ndarray, limit: int = 50) -> int | None:
    """Steps the (deterministic) guided-failure controller takes from point-mass state `obs` to fail."""
    env = point_mass.BoundedPointMassEnv()
    obs, _ = env.reset(options={"state": obs})
    for t in range(1, limit + 1):
        obs, _, _, _, info = env.step(point_mass.failure_action(obs))
        if info["ir_failure"]:
            return t
    return None


def test_clips_start_two_to_eight_steps_before_the_policy_failure_and_escape() -> None:
    clips = record_policy_recoveries(point_mass.BoundedPointMassEnv(), point_mass.failure_action,
                                     point_mass.recovery_action, 6, np.random.default_rng(0), point_mass.SPEC,
                                     noise=0.1, max_steps=15)
    episodes = clips.episode_slices()
    assert len(episodes) == 6
    assert not clips.cost.any() and not clips.terminated.any()
    for episode in episodes:
        assert len(clips.obs[episode]) == 15
        lead = steps_to_failure(clips.obs[episode][0])
        assert lead is not None and 2 <= lead <= 8  # the scripted recovery escapes from the first start tried


def test_a_recovery_that_fails_gives_no_clips() -> None:
    clips = record_policy_recoveries(point_mass.BoundedPointMassEnv(), point_mass.failure_action,
                                     point_mass.failure_action, 3, np.random.default_rng(0), point_mass.SPEC,
                                     noise=0.0, max_steps=15, max_rollouts=5)
    assert len(clips) == 0


class Cliff(gym.Env):
    """x moves 0.1 per unit action from 0; x > 1 is an IR failure.  Episodes last 20 steps."""

    SPEC = TaskSpec(name="Cliff", observation_names=("x",), action_names=("a",), action_low=(-1.0,),
                    action_high=(1.0,))
    observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(1,), dtype=np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x, self.t = 0.0, 0
        return np.array([self.x], np.float32), {}

    def step(self, action):
        self.x, self.t = self.x + 0.1 * float(action[0]), self.t + 1
        failure = self.x > 1.0 + 1e-9
        return np.array([self.x], np.float32), 0.0, failure, self.t >= 20, {"cost": float(failure)}


def late_recovery(obs: np.ndarray) -> np.ndarray:
    """Backs off only while x < 0.25: from further in it pushes on (a recovery that must start early)."""
    return np.array([-1.0 if obs[0] < 0.25 else 1.0], np.float32)


def test_a_recovery_that_fails_is_tried_again_from_earlier_states() -> None:
    forward = lambda obs: np.ones(1, np.float32)  # noqa: E731  fails at step 11 (x = 1.1)
    clips = record_policy_recoveries(Cliff(), forward, late_recovery, 5, np.random.default_rng(0), Cliff.SPEC,
                                     noise=0.0, max_steps=10)
    starts = clips.obs[[episode.start for episode in clips.episode_slices()]][:, 0]
    assert len(starts) == 5 and not clips.cost.any()
    np.testing.assert_array_less(starts, 0.25)  # only escapes started before x = 0.25 were kept
    too_short = record_policy_recoveries(Cliff(), forward, late_recovery, 5, np.random.default_rng(0), Cliff.SPEC,
                                         noise=0.0, max_steps=10, max_lead=7, max_rollouts=20)
    assert len(too_short) == 0  # x < 0.25 is at least 8 steps before the failure


class UnseededStart(point_mass.BoundedPointMassEnv):
    """Ignores the reset seed: a replay reaches another state."""

    def reset(self, *, seed=None, options=None):
        return super().reset(seed=None, options=options)


def test_an_env_that_cannot_be_replayed_is_refused() -> None:
    with pytest.raises(RuntimeError, match="deterministic given seed and actions"):
        record_policy_recoveries(UnseededStart(), point_mass.failure_action, point_mass.recovery_action, 2,
                                 np.random.default_rng(0), point_mass.SPEC, noise=0.1, max_steps=15)


def test_metaworld_replays_exactly_and_the_vase_recoveries_escape() -> None:
    env = FailureBenchEnv("obstructed-push")
    heading_for_the_vase = lambda obs: failure_action(env, obs)  # noqa: E731
    clips = record_policy_recoveries(env, heading_for_the_vase, lambda obs: recovery_action(env, obs), 2,
                                     np.random.default_rng(0), env.task.spec, noise=0.1, max_steps=30)
    assert len(clips.episode_slices()) == 2
    assert not clips.cost.any()
    starts = clips.obs[[episode.start for episode in clips.episode_slices()]]
    puck_to_vase = np.linalg.norm(starts[:, 4:6] - starts[:, 11:13], axis=1)
    assert ((puck_to_vase > 0.045) & (puck_to_vase < 0.15)).all()  # on the way in, not yet touching (4.5 cm)
