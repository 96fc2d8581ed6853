"""The synchronous driver of the robot runtime: one process, one control tick after another.

Per tick of the 5 Hz loop (robot clock), in DESIGN.md's order:

    objects = perception.step()          camera -> ObjectArray
    state   = bridge.state()             RobotState
    step    = monitor.step(objects, state, now)       observation, reward, cost, verdicts
    ending  = episodes.tick(step)        success | IR failure | timeout | stall abort
    (agent completes the previous transition with this step's reward and cost)
    proposal = agent.propose(obs)        task policy
    executed, verdict = shield.filter    C_H > eps_safe -> recovery action
    bridge.command(executed)             hard limits, franky

and between episodes: the arm goes home, a human (or the simulated one) resets the scene, the
agent updates PPO, the session layer writes the checkpoint.  The ROS graph calls the same
components in the same order, one node each.

No command is sent on an unusable tick (stale or missing objects), so the bridge's watchdog
stops the arm; the episode manager aborts the episode when that lasts (camera stall).  A robot
error is recovered by the bridge (the command is dropped and counted); an unrecoverable one
ends the run with the bridge's one-line RobotError.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from farl.agent import Proposal
from farl.console import ConsoleView
from farl.runtime_config import RuntimeConfig
from farl_control.bridge import FrankaBridge, RobotError, RobotStateSample
from farl_core.episodes import Ending, EpisodeManager, HumanEvent, Outcome, Phase
from farl_core.task_monitor import MonitorStep, TaskMonitor
from farl_perception.objects import ObjectArray
from farl_safety.failure_kinds import failure_kind, override_window
from farl_safety.shield import Shield

log = logging.getLogger(__name__)

CLOCK_STALL_S = 10.0
"""Wall seconds without the robot clock advancing before the loop gives up on the robot (or franky-sim)."""


class ObjectSource(Protocol):
    """Perception (camera -> objects) or the simulator's ground truth: one ObjectArray per tick."""

    def step(self) -> ObjectArray: ...


class LoopAgent(Protocol):
    """What acts on each tick: farl.agent.Agent (task policy + learner) or a demo recorder's scripted agent."""

    @property
    def updates(self) -> int: ...

    @property
    def pending(self) -> bool: ...

    def propose(self, observation: np.ndarray) -> Proposal: ...

    def commit(self, observation: np.ndarray, proposal: Proposal, executed: np.ndarray) -> None: ...

    def outcome(self, reward: float, cost: float, next_observation: np.ndarray, terminated: bool,
                truncated: bool) -> None: ...

    def lose_step(self) -> None: ...

    def end_episode(self) -> dict[str, float] | None: ...


class SceneOperator(Protocol):
    """Who resets the scene between episodes: the simulated human, or the person at the robot."""

    auto_start: bool

    def reset_scene(self, episode: int, now: float) -> np.ndarray:
        """Put the objects at a start (or wait for a person to) and return the episode's goal (x, y)."""
        ...

    def during_episode(self, now: float) -> None: ...


class TickRecorder(Protocol):
    """What a recorder sees of an episode (farl_teleop.loop_recorder: the ROS graph's bags, in process)."""

    def started(self, goal: np.ndarray, stamp: float) -> None: ...

    def observed(self, objects: ObjectArray, state: RobotStateSample, stamp: float) -> None: ...

    def commanded(self, action: np.ndarray, observation: np.ndarray, stamp: float, log_prob: float,
                  policy_version: int) -> None: ...

    def ended(self, outcome: Outcome, reason: str, stamp: float) -> None: ...


class Operator(Protocol):
    """The operator console or a script: human events in, the loop's state out."""

    def poll(self) -> list[HumanEvent]: ...

    def show(self, view: ConsoleView) -> None: ...


@dataclass(frozen=True)
class ManualReset:
    """The real robot's scene operator: a person resets the objects and presses start; the goal is configured."""

    goal: tuple[float, float]
    auto_start = False

    def reset_scene(self, episode: int, now: float) -> np.ndarray:
        del episode, now
        return np.asarray(self.goal, dtype=float)

    def during_episode(self, now: float) -> None:
        """A person's disturbances happen in the world, not here."""


@dataclass
class EpisodeRecord:
    """One finished episode: a row of episodes.csv."""

    episode: int
    outcome: str
    by_human: bool
    reason: str
    ret: float                  # sum of the rewards of the episode's completed transitions
    length: int                 # completed transitions (actions whose outcome was observed)
    overrides: int              # ticks on which the shield executed the recovery action
    interventions: int          # human events during the episode (marks, aborts, stop)
    mean_risk: float
    max_risk: float
    step_p50_ms: float          # perception processing + monitor + policy + shield + bridge command
    step_p99_ms: float
    camera_p50_ms: float        # waiting for / rendering the camera frame (shown apart: a real D435 costs ~0)
    unusable_ticks: int
    overruns: int               # ticks whose work outlasted the control period
    robot_errors: int           # commands dropped by the bridge (recovered robot errors, rejected input)
    policy_version: int         # PPO updates applied to the policy that acted in this episode
    updated: bool               # a PPO update ran after this episode
    robot_time_s: float         # robot-clock duration
    # an IR failure's kind by who acted in the ticks before it (farl_safety.failure_kinds); "" otherwise.
    # Last and defaulted: session checkpoints from before it keep loading.
    failure_kind: str = ""

    @property
    def ir_failure(self) -> bool:
        return self.outcome == Outcome.IR_FAILURE.value


@dataclass
class EpisodeTally:
    """What one episode accumulates tick by tick (both drivers: this loop and the ROS policy node)."""

    ret: float = 0.0
    length: int = 0
    overrides: int = 0
    interventions: int = 0
    risks: list[float] = field(default_factory=list)
    step_s: list[float] = field(default_factory=list)
    camera_s: list[float] = field(default_factory=list)
    unusable: int = 0
    overruns: int = 0
    robot_errors: int = 0
    recent_overrides: deque[bool] = field(default_factory=override_window)

    def acted(self, overridden: bool) -> None:
        """The shield's verdict on one acted tick: counted, and kept for filing a failure by who acted."""
        self.overrides += overridden
        self.recent_overrides.append(overridden)

    def record(self, episode: int, ending: Ending, version: int, updated: bool, robot_time: float) -> EpisodeRecord:
        """The episodes.csv row of the finished episode."""
        return EpisodeRecord(
            episode=episode, outcome=ending.outcome.value, by_human=ending.by_human, reason=ending.reason,
            ret=self.ret, length=self.length, overrides=self.overrides, interventions=self.interventions,
            mean_risk=float(np.mean(self.risks)) if self.risks else float("nan"),
            max_risk=float(np.max(self.risks)) if self.risks else float("nan"),
            step_p50_ms=_percentile_ms(self.step_s, 50), step_p99_ms=_percentile_ms(self.step_s, 99),
            camera_p50_ms=_percentile_ms(self.camera_s, 50), unusable_ticks=self.unusable,
            overruns=self.overruns, robot_errors=self.robot_errors, policy_version=version,
            updated=updated, robot_time_s=robot_time,
            failure_kind=failure_kind(self.recent_overrides) if ending.outcome is Outcome.IR_FAILURE else "")


def handle_events(manager: EpisodeManager, tally: EpisodeTally, events: list[HumanEvent]) -> None:
    """Human events into the episode manager; those during a running episode count as interventions."""
    for event in events:
        if event is not HumanEvent.START and manager.phase is Phase.RUNNING:
            tally.interventions += 1
        manager.handle(event)


def account_step(manager: EpisodeManager, agent: LoopAgent, tally: EpisodeTally, step: MonitorStep) -> Ending | None:
    """One monitored tick of the running episode: the manager's verdict, the pending transition completed
    with this step's reward and cost. The ending if the tick ended the episode (then nothing is proposed)."""
    ending = manager.tick(step.usable, step.success, step.ir_failure, step.stamp, step.reason)
    if not step.usable:
        tally.unusable += 1
        agent.lose_step()
        return ending
    if agent.pending:
        terminated = ending is not None and ending.outcome in (Outcome.SUCCESS, Outcome.IR_FAILURE)
        agent.outcome(step.reward, step.cost, step.observation, terminated,
                      truncated=ending is not None and not terminated)
        tally.ret += step.reward
        tally.length += 1
    return ending


def close_by_human(manager: EpisodeManager, agent: LoopAgent, tally: EpisodeTally, step: MonitorStep | None) -> None:
    """A human ended the episode: the pending step ends there (a marked failure costs 1), unless aborted or
    unobservable (`step` None or unusable), when it is dropped."""
    ending = manager.ending
    if not agent.pending or ending is None or ending.outcome is Outcome.ABORTED or step is None or not step.usable:
        agent.lose_step()
        return
    failure = ending.outcome is Outcome.IR_FAILURE
    terminated = ending.outcome in (Outcome.SUCCESS, Outcome.IR_FAILURE)  # END (a clip's end) truncates
    assert step.observation is not None
    agent.outcome(step.reward, 1.0 if failure else step.cost, step.observation, terminated=terminated,
                  truncated=not terminated)
    tally.ret += step.reward
    tally.length += 1


def wait_for_robot_time(bridge: FrankaBridge, robot_time: float) -> bool:
    """Sleep until the robot clock reaches `robot_time`; False when it already had (an overrun).

    A clock that stands still for CLOCK_STALL_S wall seconds is a robot (or franky-sim) that stopped answering.
    franky-sim in lock-step runs to `robot_time` and waits there (FrankaBridge.advance_to): no overruns.
    """
    now = bridge.robot_time()
    if now >= robot_time:
        return False
    if bridge.lockstep:
        bridge.advance_to(robot_time)
        return True
    last_change, last = time.monotonic(), now
    while now < robot_time:
        time.sleep(0.002)
        now = bridge.robot_time()
        if now != last:
            last_change, last = time.monotonic(), now
        elif time.monotonic() - last_change > CLOCK_STALL_S:
            raise RobotError(f"the robot clock stood still for {CLOCK_STALL_S:.0f} s: the robot (or franky-sim) "
                             "stopped answering; check it and rerun with the same --out to resume")
    return True


def _percentile_ms(values: list[float], q: float) -> float:
    return float(np.percentile(values, q) * 1000.0) if values else float("nan")


class RobotLoop:
    """Perception, task monitor, agent, shield and bridge in one process, episode by episode."""

    def __init__(self, task_name: str, mode: str, bridge: FrankaBridge, objects: ObjectSource, monitor: TaskMonitor,
                 agent: LoopAgent, shield: Shield | None, scene: SceneOperator, operator: Operator,
                 config: RuntimeConfig, episodes_total: int = 1,
                 camera_time: Callable[[], float | None] = lambda: None, recorder: TickRecorder | None = None) -> None:
        self.task_name, self.mode = task_name, mode
        self.bridge = bridge
        self.objects = objects
        self.monitor = monitor
        self.agent = agent
        self.shield = shield
        self.scene = scene
        self.operator = operator
        self.config = config
        self.manager = EpisodeManager(config.episodes)
        self.episodes_total = episodes_total
        self.camera_time = camera_time  # seconds the last objects.step() spent on the camera (None: no camera)
        self.recorder = recorder
        self.period = 1.0 / bridge.config.control_rate_hz
        self.failures = 0
        self.timings: list[tuple[float, float | None]] = []  # (step s, camera s) of every acting tick, for benchmarks
        self.last_return: float | None = None
        self._message = ""
        self._risk: float | None = None

    @property
    def stop_requested(self) -> bool:
        return self.manager.stop_requested

    def run_episode(self, episode: int) -> EpisodeRecord:
        """Home the arm, have the scene reset, run one episode to its end, update between episodes."""
        self.bridge.reset()
        goal = self.scene.reset_scene(episode, self.bridge.robot_time())
        self.monitor.reset(goal)
        self.manager.begin(episode)
        tally = EpisodeTally()
        version = self.agent.updates
        self._wait_for_start(tally)
        started = self.bridge.robot_time()
        if self.recorder is not None:
            self.recorder.started(goal, started)
        while self.manager.phase is Phase.RUNNING:
            self._tick(tally)
        ending = self.manager.ending
        assert ending is not None
        self.bridge.command(np.zeros(3))  # hold where the episode ended; the next reset homes the arm
        self._message = f"episode {episode + 1}: {ending.outcome.value} ({ending.reason})"
        log.info(self._message)
        robot_time = self.bridge.robot_time() - started
        if self.recorder is not None:
            self.recorder.ended(ending.outcome, ending.reason, started + robot_time)
        self.bridge.idle()  # the update and the reset take a while: in lock-step the hold runs to its end first
        update = self.agent.end_episode()
        if update is not None:
            self._message += f"; PPO update {self.agent.updates}"
        self.failures += ending.outcome is Outcome.IR_FAILURE
        self.last_return = tally.ret
        self._show(tally)
        return tally.record(episode, ending, version, update is not None, robot_time)

    # --- one episode --------------------------------------------------------------------------

    def _wait_for_start(self, tally: EpisodeTally) -> None:
        if self.scene.auto_start:
            self.manager.handle(HumanEvent.START)
        self._message = "scene reset; press s to start" if not self.scene.auto_start else "running"
        deadline = time.monotonic() + self.config.start_timeout_s
        while self.manager.phase is Phase.WAITING_FOR_RESET:
            self._show(tally)
            self._handle_events(tally)
            if self.manager.stop_requested:
                raise KeyboardInterrupt
            if time.monotonic() > deadline:
                raise RobotError(f"no start key within {self.config.start_timeout_s:.0f} s of the reset; "
                                 "rerun with the same --out to resume")
            time.sleep(0.05)

    def _handle_events(self, tally: EpisodeTally) -> None:
        handle_events(self.manager, tally, self.operator.poll())

    def _tick(self, tally: EpisodeTally) -> None:
        tick_start = self.bridge.robot_time()
        self._handle_events(tally)
        if self.manager.phase is not Phase.RUNNING:  # a human ended it: complete or drop the pending step
            self._close_by_human(tally)
            return
        self.scene.during_episode(tick_start)
        wall = time.perf_counter()
        step = self._monitor_step()
        camera = self.camera_time()
        ending = account_step(self.manager, self.agent, tally, step)
        if not step.usable:
            self._message = f"holding: {step.reason}"
        elif ending is None:
            self._act(step, tally)
            elapsed = time.perf_counter() - wall
            tally.step_s.append(elapsed - (camera or 0.0))
            self.timings.append((elapsed - (camera or 0.0), camera))
            if camera is not None:
                tally.camera_s.append(camera)
        self._show(tally)
        if ending is None and not wait_for_robot_time(self.bridge, tick_start + self.period):
            tally.overruns += 1

    def _monitor_step(self) -> MonitorStep:
        objects = self.objects.step()
        state = self.bridge.state()
        now = self.bridge.robot_time()
        if self.recorder is not None:
            self.recorder.observed(objects, state, now)
        return self.monitor.step(objects, state, now)

    def _act(self, step: MonitorStep, tally: EpisodeTally) -> None:
        assert step.observation is not None
        proposal = self.agent.propose(step.observation)
        executed = proposal.action
        if self.shield is not None:
            actions, verdicts = self.shield.filter(step.observation[None], proposal.action[None])
            executed, verdict = actions[0], verdicts[0]
            self._risk = verdict.risk
            tally.risks.append(verdict.risk)
            tally.acted(verdict.overridden)
        spec = self.monitor.task.spec
        sent = np.clip(executed, spec.action_low, spec.action_high)
        command = self.bridge.command(sent[:3] * self.bridge.config.limits.max_translation, gripper=float(sent[3]))
        if command.rejected:
            tally.robot_errors += 1
            self._message = f"command dropped: {command.reason}"
        if self.recorder is not None:
            self.recorder.commanded(sent, step.observation, step.stamp, proposal.log_prob, proposal.policy_version)
        self.agent.commit(step.observation, proposal, executed)

    def _close_by_human(self, tally: EpisodeTally) -> None:
        pending = self.agent.pending and self.manager.ending is not None
        close_by_human(self.manager, self.agent, tally, self._monitor_step() if pending else None)

    def _show(self, tally: EpisodeTally) -> None:
        self.operator.show(ConsoleView(
            task=self.task_name, mode=self.mode, episode=self.manager.episode, episodes=self.episodes_total,
            phase=self.manager.phase.value, step=self.manager.steps, risk=self._risk, overrides=tally.overrides,
            failures=self.failures, episode_return=tally.ret, last_return=self.last_return,
            updates=self.agent.updates, message=self._message))
