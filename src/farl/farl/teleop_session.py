"""`farl teleop`: a demonstration session: a teleop device drives the robot loop, each episode one labelled bag.

The paper's real-robot data (section VI.C) are teleoperated task, recovery and failure
demonstrations.  A session runs the robot loop of `farl run` (robot_loop.py: camera -> perception
-> task monitor -> bridge, the bridge's hard limits on every command) with the operator's device
in the policy's place, and records every episode with the ROS graph's recorder layout
(farl_teleop.loop_recorder): one rosbag2/MCAP per episode under `--out`, labelled with task, role
and outcome, which `farl data build` turns into a dataset.

The operator's verbs (console keys, LeRobot's record flow): `s` start, `y` save as a success,
`f` mark an IR failure, `e` end and save (a recovery clip), `r` discard and re-record, `q` stop.
The monitor ends an episode by itself on success (task demos), IR failure or timeout.  A
discarded (or stopped) episode's bag is dropped and the same episode is recorded again.

Roles: `task` records from the scene's reset.  `failure` does too (the operator guides the robot
into a failure; success does not end it).  `recovery` starts near a failure: in simulation the
scripted failure controller drives the scene there first, unrecorded, and hands over to the
device within `handover_gap` of the failure (farl_sim.franka_scenes.controllers.DemoScript); on a
robot the person sets the scene up near a failure before pressing start.

`--device scripted` is the task's scripted controller as the operator (for tests and unattended
simulation): recovery clips end after `recovery_steps` recorded ticks; a guided failure that timed
out before failing and a recovery clip that failed anyway are discarded and recorded again.
Resumable: rerunning with the same `--out` continues after the last saved episode; nothing recorded
is overwritten.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from farl.agent import Proposal
from farl.console import TELEOP_KEYS, TELEOP_KEYS_HELP, ConsoleView, TerminalConsole
from farl.robot_loop import Operator, RobotLoop
from farl.run_session import Configs, load_configs, open_world
from farl.runtime_config import demo_runtime
from farl_core.episodes import HumanEvent, Outcome
from farl_core.errors import FarlError
from farl_core.franka_tasks import FrankaTask, get_franka_task
from farl_core.task_monitor import TaskMonitor
from farl_sim.franka_scenes.controllers import ROLES, DemoScript, scripted_controller
from farl_teleop.devices import (
    KEYBOARD_HELP,
    KeyboardTeleop,
    ScriptedTeleop,
    SpaceMouseTeleop,
    TeleopDevice,
    device_kind,
)
from farl_teleop.episode_bags import finished_episodes, read_label
from farl_teleop.loop_recorder import LoopBagRecorder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TeleopRequest:
    """The `farl teleop` command line."""

    task: str
    role: str
    episodes: int                 # episodes to save (discarded ones are re-recorded)
    out: Path                     # the bag folder
    device: str = "keyboard"
    robot: str = "sim"
    camera: str = "sim"
    seed: int = 0
    noise: float = 0.2            # --device scripted: action noise std (farl demos' default for task demos)
    recovery_steps: int = 30      # --device scripted, recovery: the clip's length (FailureBench's)
    handover_gap: float = 0.03    # simulation, recovery: metres from the failure at which the device takes over
    config: Path | None = None

    def check(self) -> None:
        if self.role not in ROLES:
            raise FarlError(f"--role {self.role}: choose one of {', '.join(ROLES)}")
        if self.episodes < 1:
            raise FarlError(f"--episodes must be at least 1, got {self.episodes}")
        kind, _ = device_kind(self.device)
        if kind == "scripted" and self.robot != "sim":
            raise FarlError("--device scripted drives franky-sim only: on a robot, teleoperate (keyboard, "
                            "spacemouse, twist:TOPIC, joy:TOPIC)")
        if self.camera in ("sim", "ground-truth") and self.robot != "sim":
            raise FarlError(f"--camera {self.camera} renders franky-sim's scene: with a real robot use "
                            "--camera realsense[:SERIAL]")


def open_device(spec: str, task: FrankaTask, role: str, noise: float = 0.2) -> TeleopDevice:
    """The device of a `--device` value (`farl teleop`, and the policy node's mode teleop)."""
    kind, topic = device_kind(spec)
    if kind == "keyboard":
        return KeyboardTeleop()
    if kind == "spacemouse":
        return SpaceMouseTeleop()
    if kind in ("twist", "joy"):
        from farl_teleop.topic_teleop_node import RosTopicTeleop

        return RosTopicTeleop(kind, topic)
    if role == "recovery":  # the approach is the session's (TeleopAgent), the device recovers
        return ScriptedTeleop(scripted_controller(task, "recovery"), noise / 2)
    script = DemoScript(task, role)
    return ScriptedTeleop(script.action, noise, begin=script.begin)


class TeleopAgent:
    """The robot loop's agent of a demonstration: the device's input each tick (zero motion while disengaged).

    For recovery demonstrations in simulation, `approach` (a recovery DemoScript) drives the scene to a
    near-failure state first; `recording` is False until it hands over.  `clip_steps`: a scripted
    recovery clip is complete (`clip_done`) after that many recorded ticks.
    """

    updates = 0

    def __init__(self, device: TeleopDevice, approach: DemoScript | None = None,
                 clip_steps: int | None = None) -> None:
        self.device, self.approach, self.clip_steps = device, approach, clip_steps
        self.recorded_ticks = 0
        self.engaged_ticks = 0
        self._pending = False

    @property
    def recording(self) -> bool:
        return self.approach is None or self.approach.handed_over

    @property
    def clip_done(self) -> bool:
        return self.clip_steps is not None and self.recorded_ticks >= self.clip_steps

    @property
    def pending(self) -> bool:
        return self._pending

    def begin_episode(self, rng: np.random.Generator) -> None:
        self.recorded_ticks = self.engaged_ticks = 0
        if self.approach is not None:
            self.approach.begin(rng)
        begin = getattr(self.device, "begin_episode", None)
        if begin is not None:
            begin(rng)

    def propose(self, observation: np.ndarray) -> Proposal:
        if self.approach is not None and not self.approach.handed_over:
            action = self.approach.action(observation)
            if not self.approach.handed_over:
                return Proposal(np.asarray(action, dtype=np.float32), float("nan"), 0)
        reading = self.device.read(observation)
        self.recorded_ticks += 1
        self.engaged_ticks += reading.engaged
        return Proposal(reading.action, float("nan"), 0)

    def commit(self, observation: np.ndarray, proposal: Proposal, executed: np.ndarray) -> None:
        del observation, proposal, executed
        self._pending = True

    def outcome(self, reward: float, cost: float, next_observation: np.ndarray, terminated: bool,
                truncated: bool) -> None:
        del reward, cost, next_observation, terminated, truncated
        self._pending = False

    def lose_step(self) -> None:
        self._pending = False

    def end_episode(self) -> None:
        self._pending = False

    def state(self) -> tuple[dict, dict]:
        """Nothing learned to checkpoint (the run directory's session file only keeps the episode records)."""
        return {}, {"teleop": self.device.name}

    def load_state(self, tensors: dict, meta: dict) -> None:
        del tensors, meta


def session_agent(request: TeleopRequest, task: FrankaTask) -> TeleopAgent:
    """The device of `request` as the loop's agent, with the simulated approach of a recovery demo (franky-sim)
    and, for a scripted device, the recovery clip's length (`farl teleop` and the graph's mode teleop)."""
    device = open_device(request.device, task, request.role, request.noise)
    approach = DemoScript(task, "recovery", request.handover_gap) if request.role == "recovery" and \
        request.robot == "sim" else None
    scripted = device_kind(request.device)[0] == "scripted"
    return TeleopAgent(device, approach, request.recovery_steps if scripted and approach is not None else None)


def demo_kept(role: str, outcome: Outcome, agent: TeleopAgent, scripted: bool) -> bool:
    """Whether an ended demonstration is saved: not when discarded (ABORTED) or empty, nor a scripted one that
    missed its role (a guided failure that never failed, a recovery clip that failed anyway: FailureBench drops
    those too).  Otherwise the same episode is recorded again."""
    missed = (role == "failure" and outcome is not Outcome.IR_FAILURE) or \
        (role == "recovery" and outcome is Outcome.IR_FAILURE)
    return outcome is not Outcome.ABORTED and agent.recorded_ticks > 0 and not (scripted and missed)


def max_tries(episodes: int, scripted: bool) -> int | None:
    """A scripted device that keeps missing its role gives up after this many episodes (a person never does)."""
    return 3 * episodes + 5 if scripted else None


class TeleopOperator:
    """The console (or nothing, for a scripted device), plus the scripted recovery clip's end."""

    def __init__(self, console: Operator | None, agent: TeleopAgent) -> None:
        self.console, self.agent = console, agent

    def poll(self) -> list[HumanEvent]:
        events = self.console.poll() if self.console is not None else []
        if self.agent.clip_done:
            events.append(HumanEvent.END)
        return events

    def show(self, view: ConsoleView) -> None:
        if self.console is not None:
            self.console.show(view)


class ManualStart:
    """A scene operator whose episodes wait for the start key (a person teleoperating in simulation)."""

    auto_start = False

    def __init__(self, scene: Any) -> None:
        self.scene = scene

    def reset_scene(self, episode: int, now: float) -> np.ndarray:
        return self.scene.reset_scene(episode, now)

    def during_episode(self, now: float) -> None:
        self.scene.during_episode(now)


@dataclass(frozen=True)
class TeleopSummary:
    saved: dict[str, int]      # outcome -> saved episodes (this run and earlier ones in --out)
    discarded: int
    bags: list[Path]


def session_configs(request: TeleopRequest) -> Configs:
    """The runtime's configuration; failure and recovery demonstrations do not end at the goal."""
    configs = load_configs(request.config)
    return replace(configs, runtime=demo_runtime(configs.runtime, request.role))


def existing_episodes(request: TeleopRequest) -> list[Path]:
    """The saved episodes of an earlier run into `--out` (refused when they are another task's or role's)."""
    bags = finished_episodes(request.out) if request.out.is_dir() else []
    for bag in bags:
        label = read_label(bag)
        if (label.task, label.role) != (request.task, request.role):
            raise FarlError(f"{request.out} holds {label.role} demonstrations of {label.task} ({bag.name}); record "
                            f"{request.role} demonstrations of {request.task} into another --out")
    return bags


def run_teleop(request: TeleopRequest, console: Operator | None = None, progress: bool = True) -> TeleopSummary:
    """Record (or continue) the demonstration session `request` describes."""
    request.check()
    task = get_franka_task(request.task)
    configs = session_configs(request)
    bags = existing_episodes(request)
    saved = {o.value: 0 for o in Outcome}
    for bag in bags:
        saved[read_label(bag).outcome] += 1
    next_index = read_label(bags[-1]).episode + 1 if bags else 0
    scripted = device_kind(request.device)[0] == "scripted"
    if console is None and device_kind(request.device)[0] == "keyboard" and not sys.stdin.isatty():
        raise FarlError("--device keyboard needs a terminal on stdin (run it in a shell, over SSH with -t), or use "
                        "--device spacemouse, twist:TOPIC or joy:TOPIC")
    recorder = LoopBagRecorder(request.out, task.name, request.role)
    agent = session_agent(request, task)
    recorder.gate = lambda: agent.recording
    discarded = 0
    with contextlib.ExitStack() as stack:
        stack.callback(agent.device.close)
        world = stack.enter_context(open_world(task, configs, request.robot, request.camera, request.seed))
        bridge, objects, timing, scene = world
        if not scripted and scene.auto_start:
            scene = ManualStart(scene)
        terminal = console if console is not None or scripted else stack.enter_context(_console(agent.device))
        operator = TeleopOperator(terminal, agent)
        monitor = TaskMonitor(task, configs.runtime.monitor)
        loop = RobotLoop(task.name, f"teleop {request.role}", bridge, objects, monitor, agent, None, scene, operator,
                         configs.runtime, request.episodes, camera_time=timing, recorder=recorder)
        bar = tqdm(total=request.episodes, initial=min(len(bags), request.episodes), unit="episode",
                   desc=f"{request.role} demos {task.name}", disable=not progress or terminal is not None)
        tries, limit = 0, max_tries(request.episodes, scripted)
        while len(bags) < request.episodes and (limit is None or tries < limit):
            rng = np.random.default_rng([request.seed, next_index, tries])
            agent.begin_episode(rng)
            recorder.begin(next_index)
            try:
                record = loop.run_episode(next_index)
            except BaseException:
                recorder.abandon()
                raise
            tries += 1
            outcome = Outcome(record.outcome)
            if demo_kept(request.role, outcome, agent, scripted):
                bags.append(recorder.finish(outcome))
                saved[outcome.value] += 1
                next_index += 1
                bar.update(1)
            else:
                recorder.abandon()
                discarded += 1
            bar.set_postfix(saved=len(bags), discarded=discarded, last=outcome.value, refresh=False)
            if loop.stop_requested:
                break
        bar.close()
    if scripted and len(bags) < request.episodes:
        raise FarlError(f"only {len(bags)} of {request.episodes} scripted {request.role} episodes were kept in "
                        f"{tries} tries (kept in {request.out}); check the scene with `farl run --camera sim`")
    return TeleopSummary(saved, discarded, bags)


@contextlib.contextmanager
def _console(device: TeleopDevice) -> Iterator[TerminalConsole]:
    feed = device.feed if isinstance(device, KeyboardTeleop) else None
    help_line = TELEOP_KEYS_HELP + ("   " + KEYBOARD_HELP if feed is not None else "")
    with TerminalConsole(keys=TELEOP_KEYS, help_line=help_line, on_key=feed) as console:
        yield console
