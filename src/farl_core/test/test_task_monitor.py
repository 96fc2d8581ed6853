"""The task monitor and the episode manager: the robot loop's verdicts, without a robot."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from farl_core.episodes import EpisodeConfig, EpisodeManager, HumanEvent, Outcome, Phase
from farl_core.franka_tasks import get_franka_task
from farl_core.spec import SpecError
from farl_core.task_monitor import MonitorConfig, TaskMonitor

TASK = get_franka_task("fragile-push-wall")
GOAL = np.array([0.645, 0.08])
EE = np.array([0.55, 0.0, 0.30])


@dataclass
class Obj:
    name: str
    position: np.ndarray
    stale: bool = False


@dataclass
class Objects:
    stamp: float
    objects: tuple[Obj, ...]


@dataclass
class Arm:
    ee_position: np.ndarray
    gripper_width: float = 0.08


def cup(x: float, y: float, stale: bool = False) -> Obj:
    return Obj("object", np.array([x, y, 0.03]), stale)


def monitor() -> TaskMonitor:
    made = TaskMonitor(TASK, MonitorConfig(max_unseen_s=0.6, max_objects_age_s=0.5))
    made.reset(GOAL)
    return made


def test_a_fresh_step_gives_the_task_observation_reward_and_verdicts() -> None:
    step = monitor().step(Objects(1.0, (cup(0.42, 0.08), Obj("wall", np.full(3, np.nan), stale=True))), Arm(EE), 1.1)
    assert step.usable and step.observation is not None
    np.testing.assert_allclose(step.observation, [*EE, 0.08, 0.42, 0.08, *GOAL], rtol=1e-6)
    assert step.reward == pytest.approx(TASK.reward({"object": np.array([0.42, 0.08, 0.03])}, EE, GOAL))
    assert not step.ir_failure and not step.success and step.cost == 0.0


def test_the_cup_at_the_wall_is_an_ir_failure_and_at_the_goal_a_success() -> None:
    wall = TASK.geometry.wall
    failing = monitor().step(Objects(1.0, (cup(wall.x_min - 0.03, 0.08),)), Arm(EE), 1.0)
    assert failing.usable and failing.ir_failure and failing.cost == 1.0
    done = monitor().step(Objects(1.0, (cup(*GOAL),)), Arm(EE), 1.0)
    assert done.usable and done.success and not done.ir_failure


def test_old_or_unseen_objects_make_the_step_unusable_not_a_guess() -> None:
    watch = monitor()
    assert not watch.step(Objects(1.0, (cup(0.42, 0.08, stale=True),)), Arm(EE), 1.0).usable  # never seen
    assert watch.step(Objects(1.0, (cup(0.42, 0.08),)), Arm(EE), 1.0).usable
    assert watch.step(Objects(1.4, (cup(0.42, 0.08, stale=True),)), Arm(EE), 1.4).usable   # behind the arm, briefly
    hidden = watch.step(Objects(1.8, (cup(0.42, 0.08, stale=True),)), Arm(EE), 1.8)
    assert not hidden.usable and "unseen for 0.80 s" in hidden.reason
    stalled = watch.step(Objects(1.0, (cup(0.42, 0.08),)), Arm(EE), 2.0)
    assert not stalled.usable and "camera stalled" in stalled.reason
    assert not watch.step(Objects(2.0, ()), Arm(EE), 2.0).usable  # not reported at all


def test_nan_in_a_fresh_input_is_a_one_line_error() -> None:
    with pytest.raises(SpecError) as error:
        monitor().step(Objects(1.0, (cup(np.nan, 0.08),)), Arm(EE), 1.0)
    assert "\n" not in str(error.value) and "object_x" in str(error.value)


def running() -> EpisodeManager:
    manager = EpisodeManager(EpisodeConfig(max_steps=3, stall_abort_s=1.0))
    manager.begin(0)
    manager.handle(HumanEvent.SUCCESS)          # ignored: not running yet
    assert manager.phase is Phase.WAITING_FOR_RESET
    manager.handle(HumanEvent.START)
    assert manager.phase is Phase.RUNNING
    return manager


def test_the_monitor_ends_episodes_on_failure_success_and_timeout() -> None:
    manager = running()
    assert manager.tick(True, False, True, 0.0).outcome is Outcome.IR_FAILURE
    manager = running()
    assert manager.tick(True, True, False, 0.0).outcome is Outcome.SUCCESS
    manager = running()
    endings = [manager.tick(True, False, False, t) for t in range(4)]
    assert endings[:3] == [None] * 3 and endings[3].outcome is Outcome.TIMEOUT and not endings[3].by_human


def test_a_long_stall_aborts_and_a_short_one_does_not() -> None:
    manager = running()
    assert manager.tick(False, False, False, 0.0, "camera stalled") is None
    assert manager.tick(True, False, False, 0.8) is None       # usable again: the stall clock restarts
    assert manager.tick(False, False, False, 1.0) is None
    ending = manager.tick(False, False, False, 2.0, "camera stalled")
    assert ending.outcome is Outcome.ABORTED and "camera stalled" in ending.reason and not ending.by_human


def test_human_events_end_episodes_with_their_outcome() -> None:
    for event, outcome in ((HumanEvent.SUCCESS, Outcome.SUCCESS), (HumanEvent.FAILURE, Outcome.IR_FAILURE),
                           (HumanEvent.ABORT, Outcome.ABORTED)):
        manager = running()
        manager.handle(event)
        assert manager.ending.outcome is outcome and manager.ending.by_human and not manager.stop_requested
    manager = running()
    manager.handle(HumanEvent.STOP)
    assert manager.ending.outcome is Outcome.ABORTED and manager.stop_requested
