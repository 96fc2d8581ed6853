"""ROS 2 node `farl_bridge`: /farl/action/command in, the Franka moved through the hard limits, /farl/robot_state out.

A thin adapter (DESIGN.md) around `FrankaBridge`: parameters -> BridgeConfig, each Action on
/farl/action/command -> `FrankaBridge.command` (the action's normalised translation scaled by
`limits.max_translation`, its gripper channel as is), a timer at `state_rate_hz` -> RobotState.
The bridge's own watchdog stops the arm when commands stop (a policy or shield process that
dies leaves the arm holding); a robot error is recovered by the bridge and shows in the state's
error flags; an unrecoverable one leaves the node running and reporting it, nothing moving.

Services: `~/reset` (std_srvs/Trigger: joint motion home, gripper open) and `~/recover`
(std_srvs/Trigger: recover_from_errors after a person fixed the cause).

With `robot: sim` the node runs inside the simulated world's process (farl_sim's
`sim_world_node`, next to the scene node), owns the embedded franky-sim, and publishes /clock
from franky-sim's robot time, so every node of the graph runs on simulated time
(`use_sim_time`).  On hardware it runs alone: `bridge_node --ros-args --params-file farl.yaml
-p robot:=172.16.0.2`.

QoS: commands reliable, depth 1 (only the newest command is worth applying); robot state reliable,
depth 1; /clock as rclpy's clock subscribers expect (reliable, depth 1).
Node-only parameter: `stats_file`: where to write command-latency figures (JSON) on shutdown.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np
from builtin_interfaces.msg import Time
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock as ClockMsg
from std_srvs.srv import Trigger

from farl_control.bridge import FrankaBridge, RobotError
from farl_control.config import BridgeConfig
from farl_control.state_messages import fill_robot_state
from farl_core.atomic_files import write_atomic
from farl_core.config import from_mapping
from farl_core.message_time import stamp_seconds, to_stamp
from farl_core.run_node import Process, closing_process, read_parameters, run
from farl_interfaces.msg import Action, RobotState

NODE = "farl_bridge"
NODE_PARAMETERS = {"stats_file": "", "base_frame": "base"}
CLOCK_RATE_HZ = 50.0
"""/clock updates per wall second under franky-sim: 20 ms steps, a tenth of the 5 Hz loop's period.  Every
node on sim time wakes for each update (rclpy's executor: Python, under the GIL); at 200 Hz those wake-ups
starved franky-sim's Python 1 kHz loop in the same process (profiled in `farl bringup`: an episode ran at
1/36 of real time)."""
COMMANDS = "/farl/action/command"
RELIABLE_LATEST = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
Connect = Callable[[BridgeConfig], FrankaBridge]


class BridgeNode(Node):
    """The Franka (or franky-sim) on the graph; `connect` opens the bridge from the node's config."""

    def __init__(self, connect: Connect = FrankaBridge.connect) -> None:
        super().__init__(NODE, automatically_declare_parameters_from_overrides=True)
        own, values = read_parameters(self, NODE_PARAMETERS)
        self.config = from_mapping(BridgeConfig, values, where=f"node {NODE}")
        self._stats_file, self._frame_id = own["stats_file"], own["base_frame"]
        self.bridge = connect(self.config)
        self._latencies: deque[float] = deque(maxlen=10_000)  # tick stamp -> command applied, s
        self._commands = self._dropped = 0
        self._down = threading.Event()  # the bridge raised RobotError: nothing moves until `recover`
        motion = MutuallyExclusiveCallbackGroup()  # commands, reset and recover never interleave
        self.create_subscription(Action, COMMANDS, self._command, RELIABLE_LATEST, callback_group=motion)
        self.create_service(Trigger, "~/reset", self._reset, callback_group=motion)
        self.create_service(Trigger, "~/recover", self._recover, callback_group=motion)
        self._state = self.create_publisher(RobotState, "/farl/robot_state", RELIABLE_LATEST)
        self.create_timer(1.0 / self.config.state_rate_hz, self._publish_state,
                          callback_group=MutuallyExclusiveCallbackGroup())
        # franky-sim with use_sim_time: the graph runs on the robot's clock, and state is stamped with it exactly
        self._on_robot_clock = self.bridge.server is not None and bool(self.get_parameter("use_sim_time").value)
        if self.bridge.server is not None:  # franky-sim: /clock for whoever runs on simulated time
            self._clock_publisher = self.create_publisher(ClockMsg, "/clock", RELIABLE_LATEST)
            self.create_timer(1.0 / CLOCK_RATE_HZ, self._publish_clock, callback_group=MutuallyExclusiveCallbackGroup(),
                              clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.get_logger().info(f"bridge up: robot {self.config.robot}, commands on {COMMANDS}, "
                               f"watchdog {self.bridge.watchdog_timeout:.2f} s")

    # --- callbacks ------------------------------------------------------------------------------

    def _command(self, msg: Action) -> None:
        if self._down.is_set():
            self._dropped += 1
            return
        delta = np.clip(np.asarray(msg.delta, dtype=float), -1.0, 1.0)  # NaN stays NaN: the limits reject it
        translation = delta[:3] * self.config.limits.max_translation
        gripper = float(delta[3]) if len(delta) > 3 else None
        try:
            result = self.bridge.command(translation, gripper=gripper)
        except RobotError as exc:
            self._down.set()
            self.get_logger().error(f"robot error: {exc}")
            return
        if result.rejected:
            self._dropped += 1
            self.get_logger().warning(f"command dropped: {result.reason}")
            return
        self._commands += 1
        self._latencies.append(stamp_seconds(self.get_clock().now().to_msg()) - stamp_seconds(msg.header.stamp))

    def _reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        del request
        answer = self._trigger(response, self.bridge.reset, "at home, gripper open")
        if answer.success:  # the robot answered and moved: commands may flow again (a retried reset, seen under load)
            self._down.clear()
        return answer

    def _recover(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        del request
        answer = self._trigger(response, self.bridge.recover, "errors cleared")
        if answer.success:
            self._down.clear()
        return answer

    def _trigger(self, response: Trigger.Response, action: Callable[[], object], done: str) -> Trigger.Response:
        try:
            action()
        except RobotError as exc:
            self._down.set()
            response.success, response.message = False, str(exc)
            self.get_logger().error(f"robot error: {exc}")
            return response
        response.success, response.message = True, done
        return response

    def _publish_state(self) -> None:
        try:
            sample = self.bridge.state()
            stamp = self.bridge.robot_time() if self._on_robot_clock else self._now()
        except RobotError as exc:  # connection lost: the subscribers see the state stop
            self._lost(exc)
            return
        self._state.publish(fill_robot_state(RobotState(), sample, stamp, self._frame_id, Time))

    def _publish_clock(self) -> None:
        try:
            now = self.bridge.robot_time()
        except RobotError as exc:  # without /clock the sim-time timers stop too: say it here, once
            self._lost(exc)
            return
        self._clock_publisher.publish(ClockMsg(clock=to_stamp(now, Time)))

    def _lost(self, exc: RobotError) -> None:
        if not self._down.is_set():
            self._down.set()
            self.get_logger().error(f"robot error: {exc}")

    def _now(self) -> float:
        return stamp_seconds(self.get_clock().now().to_msg())

    # --- shutdown -------------------------------------------------------------------------------

    @property
    def failure(self) -> str | None:
        """The lost connection's error, which ends this node's process (run_node.spin): its libfranka client is dead,
        and the graph's other nodes wait for a bridge that a restart brings back (the policy node says so)."""
        return self.bridge.connection_lost

    def statistics(self) -> dict[str, float]:
        """Commands applied and dropped, and the latency from the control tick's stamp to the command applied."""
        latencies = np.asarray(self._latencies) * 1000.0
        figures = {"commands": self._commands, "dropped": self._dropped}
        if latencies.size:
            figures |= {"latency_p50_ms": float(np.percentile(latencies, 50)),
                        "latency_p99_ms": float(np.percentile(latencies, 99)), "latency_samples": int(latencies.size)}
        return figures

    def close(self) -> None:
        """Stop the arm (and franky-sim); write the statistics if asked to."""
        if self._stats_file:
            text = json.dumps(self.statistics(), indent=2) + "\n"
            write_atomic(Path(self._stats_file), lambda tmp: tmp.write_text(text))
        self.bridge.close()


def process() -> Process:
    return closing_process(NODE, BridgeNode, threads=3)


def main(args: list[str] | None = None) -> None:
    run(process(), args)
