"""ROS 2 node `farl_policy`: the task monitor and the agent, the control tick of the graph, episodes, learning.

A thin adapter (DESIGN.md) around the components `farl run` drives synchronously, called in the
same order (robot_loop.py):

    /farl/objects (each message is a tick) + latest /farl/robot_state
        -> TaskMonitor.step -> episode manager + agent.outcome (account_step)
        -> Agent.propose -> /farl/action/proposed (stamped with the tick, carrying the observation)
    /farl/action/command with that stamp (the shield's answer) -> Agent.commit (executed action)
    /farl/safety with that stamp -> risk and overrides of the episode

Ticking on each objects message acts on the freshest frame (perception's rate_hz sets the pace); a
timer ticks when objects stop coming, so a stalled camera or a dead perception node makes the
ticks unusable and aborts the episode.  A proposal whose command has not come back by the next
tick is late: counted (episodes.csv `overruns`) and not learned from.  Robot state older than
`monitor.max_objects_age_s` (a dead bridge) makes ticks unusable too, with the reason logged.

Between episodes (DESIGN.md): the bridge's `~/reset` service homes the arm, the node publishes
RESET on /farl/episode, and waits for START from a person (operator console) or the simulated
human (scene node), whose START carries the episode's goal.  The PPO update and the run
directory's files (run_session.RunDirectory: session checkpoint, episodes.csv, summary.json,
policy/) are written after each episode, so a killed node resumes from the same `out`.

Mode teleop (`mode:=teleop` in the launch, always with the recorder): the `teleop_device` of the
demonstration `role` (farl_teleop's devices: twist:TOPIC, e.g. teleop_twist_keyboard's /cmd_vel or
spacenav's /spacenav/twist; joy:TOPIC; spacemouse; scripted) acts in the policy's place, and its
action is published as /farl/action/command itself (no shield runs; the bridge's hard limits apply).
The episodes, the console's keys and the run directory's episodes.csv are as in the other modes,
with `farl teleop`'s rules for what is kept (teleop_session.demo_kept): an episode discarded by the
operator (ABORT, the console's `r`), an empty one, or a scripted one that missed its role is not
counted; the node says DISCARD instead of its outcome (the recorder deletes the bag) and records the
same episode index again.  A recovery demo on franky-sim starts with the scripted approach to a
near-failure state; the node says HANDOVER on the tick the device takes over (the recorder, with
`record_from: handover`, records from there), and a scripted device's clip ends after
`recovery_steps` ticks.

Services: `~/save_checkpoint` and `~/load_checkpoint` (farl_interfaces) for the task policy (not in
mode teleop).
Parameters: the `farl_policy` section (monitor, episodes, goal, start_timeout_s: RuntimeConfig) plus
task, mode (deploy | finetune), num_episodes (`episodes` is RuntimeConfig's group), task_policy,
recovery_policy, world_model, out, seed, robot, camera, config_file (the parameter file whose
farl_training section holds PPO and shield settings, as `farl run --config`), role and teleop_device
(mode teleop).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from builtin_interfaces.msg import Time
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import Header
from std_srvs.srv import Trigger

from farl.agent import Proposal
from farl.config_files import default_config_path
from farl.robot_loop import EpisodeRecord, EpisodeTally, ManualReset, account_step, close_by_human, handle_events
from farl.run_session import MODES, RunDirectory, RunRequest, build_agent, load_configs
from farl.runtime_config import RuntimeConfig, demo_runtime
from farl.teleop_session import TeleopAgent, TeleopRequest, demo_kept, max_tries, session_agent
from farl_control.bridge import BridgeStatus, RobotStateSample
from farl_control.state_messages import robot_state_from_msg
from farl_core.checkpoint import load_checkpoint
from farl_core.config import from_mapping
from farl_core.episodes import EpisodeManager, HumanEvent, Outcome, Phase
from farl_core.errors import ConfigError, FarlError
from farl_core.franka_tasks import FrankaTask, get_franka_task
from farl_core.message_time import stamp_key, stamp_seconds, to_stamp
from farl_core.run_node import Process, read_parameters, run
from farl_core.task_monitor import MonitorStep, TaskMonitor
from farl_interfaces.msg import Action, EpisodeEvent, ObjectArray, RobotState, SafetyVerdict
from farl_interfaces.srv import LoadCheckpoint, SaveCheckpoint
from farl_perception.object_messages import from_object_array_msg
from farl_sim.franka_scenes.controllers import ROLES
from farl_teleop.devices import device_kind

NODE = "farl_policy"
NODE_PARAMETERS = {"task": "fragile-push-wall", "mode": "deploy", "num_episodes": 10, "task_policy": "",
                   "recovery_policy": "", "world_model": "", "out": "", "seed": 0, "robot": "sim", "camera": "sim",
                   "config_file": "", "role": "task", "teleop_device": "twist:/cmd_vel"}
TELEOP = "teleop"
"""mode teleop: a teleop device in the policy's place, its action published as the command (no shield)."""
RELIABLE_LATEST = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
EVENTS_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
INPUT_SILENCE_S = 5.0
"""Wall seconds without robot state before the node reports the bridge lost (on a steady clock: under
franky-sim the bridge is also the clock, and simulated time stops with it)."""
STARTUP_SILENCE_S = 60.0
"""Wall seconds after start without any robot state before the node says so."""
RESET_ANSWER_S = 60.0
"""Wall seconds to wait for the bridge's reset answer before asking again (a reset is seconds of motion)."""
RESET_RETRY_S = 5.0
"""Wall seconds before asking for a reset again after one failed: the operator recovers the robot meanwhile
(`/farl_bridge/recover`); one request and one log line each time, not one per timer tick."""
RESET_REPEAT_S = 2.0
"""RESET is said again this often until a START answers (a scene node or console that joined late)."""

HUMAN_EVENTS = {EpisodeEvent.START: HumanEvent.START, EpisodeEvent.SUCCESS: HumanEvent.SUCCESS,
                EpisodeEvent.IR_FAILURE: HumanEvent.FAILURE, EpisodeEvent.ABORT: HumanEvent.ABORT,
                EpisodeEvent.STOP: HumanEvent.STOP, EpisodeEvent.TIMEOUT: HumanEvent.END}
"""A person's (or the scene node's) events; TIMEOUT from the operator is a demonstration's `e`: end it now."""
OUTCOME_EVENTS = {Outcome.SUCCESS: EpisodeEvent.SUCCESS, Outcome.IR_FAILURE: EpisodeEvent.IR_FAILURE,
                  Outcome.TIMEOUT: EpisodeEvent.TIMEOUT, Outcome.ABORTED: EpisodeEvent.ABORT}


@dataclass(frozen=True)
class Pending:
    """The proposal of the latest tick, waiting for the shield's command."""

    key: tuple[int, int]       # the tick's stamp
    observation: np.ndarray
    proposal: Proposal
    sent: float                # perf_counter at publishing, for the tick -> command time


def run_request(own: dict) -> RunRequest:
    """The node's parameters as the `farl run` request they mirror (its identity guards the run directory)."""
    if own["mode"] not in (*MODES, TELEOP):
        raise ConfigError(f"node {NODE}.mode: '{own['mode']}' is not one of {', '.join((*MODES, TELEOP))}")
    for name in ("task_policy", "out") if own["mode"] != TELEOP else ("out",):
        if not own[name]:
            raise ConfigError(f"node {NODE}.{name}: not set (a directory); the launch sets it from its arguments")
    if bool(own["recovery_policy"]) != bool(own["world_model"]):
        raise ConfigError(f"node {NODE}: the shield needs both recovery_policy and world_model (or neither)")
    if own["num_episodes"] < 1:
        raise ConfigError(f"node {NODE}.num_episodes: must be at least 1, got {own['num_episodes']}")
    optional = {name: Path(own[name]) if own[name] else None for name in ("recovery_policy", "world_model")}
    return RunRequest(task=own["task"], mode=own["mode"], episodes=int(own["num_episodes"]),
                      task_policy=Path(own["task_policy"]), out=Path(own["out"]), robot=own["robot"],
                      camera=own["camera"], seed=int(own["seed"]),
                      config=Path(own["config_file"]) if own["config_file"] else default_config_path(), **optional)


class PolicyNode(Node):
    def __init__(self) -> None:
        super().__init__(NODE, automatically_declare_parameters_from_overrides=True)
        own, values = read_parameters(self, NODE_PARAMETERS)
        self.runtime = from_mapping(RuntimeConfig, values, where=f"node {NODE}")
        self.request = run_request(own)
        self.task = get_franka_task(self.request.task)
        configs = load_configs(self.request.config)
        self.teleop = self.request.mode == TELEOP
        if self.teleop:
            self.runtime = demo_runtime(self.runtime, own["role"])
        self.agent = teleop_agent(own, self.task) if self.teleop else build_agent(self.request, self.task, configs)[0]
        self.role = own["role"]
        self.scripted = self.teleop and device_kind(own["teleop_device"])[0] == "scripted"
        self.tries = 0               # mode teleop: recordings of the current episode index so far (discards)
        self.discarded = 0
        self.monitor = TaskMonitor(self.task, self.runtime.monitor)
        self.manager = EpisodeManager(self.runtime.episodes)
        self.operator = ManualReset(self.runtime.goal or tuple(self.task.geometry.goal_region.centre))
        self.period = 1.0 / configs.bridge.control_rate_hz
        self.run_dir = RunDirectory(self.request.out)
        resume = self.run_dir.claim(self.request)
        self.records: list[EpisodeRecord] = (self.run_dir.load(self.agent, self.task, self.operator)
                                             if resume else [])
        self.failures = sum(r.ir_failure for r in self.records)
        self.tally = EpisodeTally()
        self.late = 0
        self._events: list[HumanEvent] = []
        self._goal: np.ndarray | None = None
        self._objects = None
        self._state: tuple[float, RobotStateSample] | None = None
        self._pending: Pending | None = None
        self._verdict_key: tuple[int, int] | None = None
        self._last_tick = -math.inf
        self._started = 0.0
        self._between = "reset"      # reset (call the bridge) | resetting | waiting (for START) | running | done
        self._reset_said = -math.inf
        self._reset_sent = 0.0
        self._reset_retry_at = -math.inf  # monotonic: no reset request before (RESET_RETRY_S after a failed one)
        self._reset_future = None
        group = MutuallyExclusiveCallbackGroup()  # the loop's state is touched by one callback at a time
        qos = RELIABLE_LATEST
        self.create_subscription(ObjectArray, "/farl/objects", self._on_objects, qos, callback_group=group)
        self.create_subscription(RobotState, "/farl/robot_state", self._on_state, qos, callback_group=group)
        self.create_subscription(Action, "/farl/action/command", self._on_command, qos, callback_group=group)
        self.create_subscription(SafetyVerdict, "/farl/safety", self._on_verdict, qos, callback_group=group)
        self.create_subscription(EpisodeEvent, "/farl/episode", self._on_event, EVENTS_QOS, callback_group=group)
        # in teleop mode the device's action is the command: the bridge's hard limits are its only filter
        self._proposals = self.create_publisher(Action, "/farl/action/command" if self.teleop else
                                                "/farl/action/proposed", qos)
        self._episodes = self.create_publisher(EpisodeEvent, "/farl/episode", EVENTS_QOS)
        self._reset = self.create_client(Trigger, "/farl_bridge/reset", callback_group=group)
        if not self.teleop:
            self.create_service(SaveCheckpoint, "~/save_checkpoint", self._save_checkpoint, callback_group=group)
            self.create_service(LoadCheckpoint, "~/load_checkpoint", self._load_checkpoint, callback_group=group)
        self.create_timer(self.period / 2, self._supervise, callback_group=group)
        self._state_seen = time.monotonic()
        self._bridge_lost = False
        self.create_timer(1.0, self._check_inputs, callback_group=group, clock=Clock(clock_type=ClockType.STEADY_TIME))
        if len(self.records) >= self.request.episodes:
            self._between = "done"
        self.get_logger().info(f"{self.request.mode} {self.task.name}: episode {len(self.records) + 1} of "
                               f"{self.request.episodes}" + (" (resumed)" if resume else ""))

    @property
    def finished(self) -> bool:
        """The session ran its episodes (or the operator stopped it)."""
        return self._between == "done"

    # --- inputs ---------------------------------------------------------------------------------

    def _now(self) -> float:
        return stamp_seconds(self.get_clock().now().to_msg())

    def _on_state(self, msg: RobotState) -> None:
        self._state = robot_state_from_msg(msg)
        self._state_seen = time.monotonic()
        if self._bridge_lost:
            self._bridge_lost = False
            self.get_logger().info("robot state is back")

    def _check_inputs(self) -> None:
        """Wall-clock liveness of the bridge: report its loss once (the arm holds: no command reaches it)."""
        silent = time.monotonic() - self._state_seen
        if self._between in ("reset", "resetting", "waiting", "done") and self._state is not None:
            # between episodes the bridge is busy homing the arm (its state can pause for seconds, seen
            # under load): the reset's answer says how that went; silence counts from the episode's start
            self._state_seen = time.monotonic()
            return
        if self._state is None and silent > STARTUP_SILENCE_S and not self._bridge_lost:
            self._bridge_lost = True  # (said once)
            self.get_logger().error(f"no /farl/robot_state {silent:.0f} s after start: is the bridge running (with "
                                    "robot:=sim, is /clock published)?")
        if self._state is not None and silent > INPUT_SILENCE_S and not self._bridge_lost and self._between != "done":
            self._bridge_lost = True
            self.get_logger().error(f"no /farl/robot_state for {silent:.1f} s: the bridge is down or unreachable; "
                                    "nothing moves the arm until it is back (restart it; the run resumes)")

    def _on_objects(self, msg: ObjectArray) -> None:
        self._objects = from_object_array_msg(msg)
        self._tick()

    def _on_event(self, msg: EpisodeEvent) -> None:
        if msg.source == NODE or msg.event not in HUMAN_EVENTS:
            return
        if msg.event == EpisodeEvent.START:
            if self._between != "waiting" or msg.episode_index != self.manager.episode:
                return  # a START for another episode, or one said twice
            self._goal = np.asarray(msg.goal, dtype=float) if len(msg.goal) >= 2 else None
        self._events.append(HUMAN_EVENTS[msg.event])
        if self._between == "waiting":
            self._tick()  # start now, not at the next frame

    def _on_command(self, msg: Action) -> None:
        pending = self._pending
        if pending is None or stamp_key(msg.header.stamp) != pending.key:
            return  # an answer to a tick already given up on (counted late then)
        self.agent.commit(pending.observation, pending.proposal, np.asarray(msg.delta, dtype=np.float32))
        self.tally.step_s.append(time.perf_counter() - pending.sent)
        self._pending = None

    def _on_verdict(self, msg: SafetyVerdict) -> None:
        if self._verdict_key is None or stamp_key(msg.header.stamp) != self._verdict_key:
            return
        self._verdict_key = None
        if math.isfinite(msg.risk):
            self.tally.risks.append(float(msg.risk))
        self.tally.acted(bool(msg.overridden))

    # --- the control tick -------------------------------------------------------------------------

    def _tick(self) -> None:
        now = self._now()
        self._last_tick = now
        if self._between == "waiting":
            events, self._events = self._events, []
            handle_events(self.manager, self.tally, events)
            if self.manager.phase is Phase.RUNNING:
                self._begin(now)
            elif self.manager.stop_requested:
                self._between = "done"
                self.get_logger().info(f"session stopped by the operator after {len(self.records)} episodes")
            return
        if self._between != "running":
            return
        events, self._events = self._events, []
        if self.teleop and self.agent.clip_done:  # a scripted recovery clip is complete
            events.append(HumanEvent.END)
        handle_events(self.manager, self.tally, events)
        if self.manager.phase is not Phase.RUNNING:  # a human ended it
            close_by_human(self.manager, self.agent, self.tally, self._monitor(now) if self.agent.pending else None)
            self._finish(now)
            return
        if self._pending is not None:  # the shield did not answer within one tick
            self.tally.overruns += 1
            self.late += 1
            self.agent.lose_step()
            self._pending = None
        try:
            step = self._monitor(now)
            ending = account_step(self.manager, self.agent, self.tally, step)
            if ending is None and step.usable:
                self._propose(step)
        except FarlError as exc:  # NaN in an observation, a broken sensor: one line, the episode ends, the run stops
            self.get_logger().error(str(exc))
            self.manager.handle(HumanEvent.STOP, reason=str(exc))
            ending = self.manager.ending
        if ending is not None:
            self._finish(now)

    def _monitor(self, now: float) -> MonitorStep:
        if self._objects is None:
            return MonitorStep(False, now, "no /farl/objects yet: is perception running?")
        if self._state is None:
            return MonitorStep(False, now, "no /farl/robot_state yet: is the bridge running?")
        stamp, state = self._state
        if now - stamp > self.runtime.monitor.max_objects_age_s:
            return MonitorStep(False, now, f"robot state {now - stamp:.2f} s old: the bridge stopped publishing")
        if state.status is BridgeStatus.UNRECOVERABLE:
            return MonitorStep(False, now, f"robot error: {state.error}")
        return self.monitor.step(self._objects, state, now)

    def _propose(self, step: MonitorStep) -> None:
        assert step.observation is not None
        approaching = self.teleop and not self.agent.recording
        proposal = self.agent.propose(step.observation)
        header = Header(stamp=to_stamp(step.stamp, Time), frame_id="base")
        if approaching and self.agent.recording:  # this tick is the recovery demo's first
            self._say(EpisodeEvent.HANDOVER, "the simulated approach hands over to the device", stamp=header.stamp)
        key = stamp_key(header.stamp)
        self._pending = Pending(key, step.observation, proposal, time.perf_counter())
        self._verdict_key = key
        self._proposals.publish(Action(header=header, delta=[float(v) for v in proposal.action],
                                       observation=[float(v) for v in step.observation],
                                       log_prob=proposal.log_prob, policy_version=proposal.policy_version))

    # --- between episodes -------------------------------------------------------------------------

    def _supervise(self) -> None:
        """The timer: ticks when objects stop coming, and the reset -> RESET -> START sequence."""
        now = self._now()
        if self._between == "running" and now - self._last_tick > 1.5 * self.period:
            self._tick()
        elif (self._between == "reset" and time.monotonic() >= self._reset_retry_at
              and self._reset.service_is_ready()):
            self._between = "resetting"
            self._reset_sent = time.monotonic()
            self._reset_future = self._reset.call_async(Trigger.Request())
            self._reset_future.add_done_callback(self._on_reset)
        elif self._between == "resetting" and time.monotonic() - self._reset_sent > RESET_ANSWER_S:
            # a request sent as the service was being discovered can be lost: ask again (homing is idempotent)
            self.get_logger().warning(f"no answer from /farl_bridge/reset in {RESET_ANSWER_S:.0f} s; asking again")
            self._between = "reset"
        elif self._between == "waiting" and now - self._reset_said > RESET_REPEAT_S:
            self._say(EpisodeEvent.RESET, "arm at home: reset the scene and start")
            self._reset_said = now

    def _on_reset(self, future) -> None:
        if future is not self._reset_future or self._between != "resetting":
            return  # the answer to a request already given up on
        answer = future.result()
        if answer is None or not answer.success:
            reason = answer.message if answer is not None else "no answer"
            self.get_logger().error(f"reset failed ({reason}); call /farl_bridge/recover: asking again in "
                                    f"{RESET_RETRY_S:.0f} s")
            self._between = "reset"
            self._reset_retry_at = time.monotonic() + RESET_RETRY_S
            return
        self.manager.begin(len(self.records))
        self.tally = EpisodeTally()
        self._between = "waiting"
        self._reset_said = -math.inf

    def _begin(self, now: float) -> None:
        self.monitor.reset(self._goal if self._goal is not None else np.asarray(self.operator.goal, dtype=float))
        self._started = now
        self._version = self.agent.updates
        if self.teleop:  # a scripted device's episode (its noise, a guided failure's turn) from its own seed
            self.agent.begin_episode(np.random.default_rng([self.request.seed, self.manager.episode, self.tries]))
        self._between = "running"
        self.get_logger().info(f"episode {self.manager.episode + 1}: running")

    def _finish(self, now: float) -> None:
        ending = self.manager.ending
        assert ending is not None
        self._pending = self._verdict_key = None
        update = self.agent.end_episode()
        if self.teleop and not demo_kept(self.role, ending.outcome, self.agent, self.scripted):
            self._discard(ending.reason)
            return
        self.tries = 0
        record = self.tally.record(self.manager.episode, ending, self._version, update is not None,
                                   now - self._started)
        self.records.append(record)
        self.run_dir.save(self.agent, self.task, self.records, self.operator)
        if update is not None:
            self.agent.policy.save(self.request.out / "policy", kind="task_policy", overwrite=True,
                                   extra={"seed": self.request.seed, "updates": self.agent.updates})
        self.failures += record.ir_failure
        note = (f"return={record.ret:.3f} length={record.length} overrides={record.overrides} "
                f"failures={self.failures} updates={self.agent.updates} late={self.tally.overruns}")
        self._say(OUTCOME_EVENTS[ending.outcome], note, episode=record.episode)
        self.get_logger().info(f"episode {record.episode + 1}: {ending.outcome.value} ({ending.reason}); {note}")
        done = len(self.records) >= self.request.episodes or self.manager.stop_requested
        self._between = "done" if done else "reset"
        if done:
            self.get_logger().info(f"session finished: {len(self.records)} episodes, {self.failures} failures; "
                                   f"files in {self.request.out}")

    def _discard(self, reason: str) -> None:
        """Mode teleop: the episode is not kept; its bag goes (DISCARD) and the same index is recorded again."""
        self.tries += 1
        self.discarded += 1
        self._say(EpisodeEvent.DISCARD, f"discarded ({reason}); recording episode {self.manager.episode + 1} again")
        self.get_logger().info(f"episode {self.manager.episode + 1}: discarded ({reason}), recorded again")
        limit = max_tries(self.request.episodes, self.scripted)
        if self.manager.stop_requested or (limit is not None and len(self.records) + self.discarded >= limit):
            self._between = "done"
            self.get_logger().info(f"session finished: {len(self.records)} episodes kept, {self.discarded} "
                                   f"discarded; bags in the recorder's folder")
        else:
            self._between = "reset"

    def _say(self, event: int, note: str, episode: int | None = None, stamp: Time | None = None) -> None:
        self._episodes.publish(EpisodeEvent(
            header=Header(stamp=self.get_clock().now().to_msg() if stamp is None else stamp), event=event,
            source=NODE, note=note, episode_index=self.manager.episode if episode is None else episode))

    # --- services ---------------------------------------------------------------------------------

    def _save_checkpoint(self, request: SaveCheckpoint.Request,
                         response: SaveCheckpoint.Response) -> SaveCheckpoint.Response:
        try:
            self.agent.policy.save(Path(request.path), kind="task_policy", overwrite=request.overwrite,
                                   extra={"seed": self.request.seed, "updates": self.agent.updates})
        except FarlError as exc:
            response.success, response.message = False, str(exc)
            return response
        response.success, response.message = True, f"task policy (PPO update {self.agent.updates}) saved"
        return response

    def _load_checkpoint(self, request: LoadCheckpoint.Request,
                         response: LoadCheckpoint.Response) -> LoadCheckpoint.Response:
        try:
            checkpoint = load_checkpoint(Path(request.path), kind="task_policy", spec=self.task.spec)
        except FarlError as exc:
            response.success, response.message = False, str(exc)
            return response
        if self._between == "running":
            response.success, response.message = False, "an episode is running: load between episodes"
            return response
        try:
            self.agent.policy.load_state_dict(checkpoint.tensors)
        except RuntimeError as exc:  # same spec, other network sizes
            response.success, response.message = False, str(exc).splitlines()[0]
            return response
        response.success, response.message = True, f"task policy loaded from {request.path}"
        return response


def teleop_agent(own: dict, task: FrankaTask) -> TeleopAgent:
    """Mode teleop's agent: the `teleop_device` (twist:TOPIC, joy:TOPIC, spacemouse, scripted) of `role`, with
    `farl teleop`'s defaults for the scripted device's noise, the recovery approach and clip."""
    if own["role"] not in ROLES:
        raise ConfigError(f"node {NODE}.role: '{own['role']}' is not one of {', '.join(ROLES)}")
    if device_kind(own["teleop_device"])[0] == "keyboard":
        raise ConfigError(f"node {NODE}.teleop_device: keyboard reads this process's terminal, which a launch does "
                          "not give it; run teleop_twist_keyboard and use twist:/cmd_vel (or `farl teleop`)")
    request = TeleopRequest(task=task.name, role=own["role"], episodes=int(own["num_episodes"]), out=Path(own["out"]),
                            device=own["teleop_device"], robot=own["robot"], camera=own["camera"],
                            seed=int(own["seed"]))
    return session_agent(request, task)


def process() -> Process:
    return Process(NODE, lambda: [PolicyNode()], threads=1)


def main(args: list[str] | None = None) -> None:
    run(process(), args)
