"""ROS 2 node `farl_console`: the operator console of the graph, in the terminal it is started from (SSH is fine).

The same console `farl run` shows (console.py: the panel, the keys s/space start, y success,
f failure, a abort, q stop), as a node: keys become /farl/episode events (source "operator"), and
the panel is filled from the graph: the policy node's RESET and outcome events (their notes carry
return, overrides, failures, updates) and the shield's verdicts on /farl/safety (risk, overrides).
`ros2 launch` gives nodes no terminal, so the console is started on its own, in the terminal the
operator watches: `ros2 run farl console_node --ros-args -p task:=... -p num_episodes:=N` (or
`.venv/bin/console_node ...`).  In simulation the scene node starts episodes and nobody needs it.
With `mode:=teleop` (a demonstration session) the keys are `farl teleop`'s: s start, y save (success),
f failure, e end and save (TIMEOUT from the operator: a truncated demo), r discard and re-record
(ABORT: the policy node answers DISCARD, the recorder deletes the bag, the episode comes again), q stop.
"""

from __future__ import annotations

import math
import time

from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import Header

from farl.console import KEYS, KEYS_HELP, TELEOP_KEYS, TELEOP_KEYS_HELP, ConsoleView, TerminalConsole
from farl_core.episodes import HumanEvent
from farl_core.run_node import Process, closing_process, read_own_parameters, run
from farl_interfaces.msg import EpisodeEvent, SafetyVerdict

NODE = "farl_console"
SOURCE = "operator"
NODE_PARAMETERS = {"task": "fragile-push-wall", "mode": "finetune", "num_episodes": 10}
EVENTS = {HumanEvent.START: EpisodeEvent.START, HumanEvent.SUCCESS: EpisodeEvent.SUCCESS,
          HumanEvent.FAILURE: EpisodeEvent.IR_FAILURE, HumanEvent.ABORT: EpisodeEvent.ABORT,
          HumanEvent.STOP: EpisodeEvent.STOP, HumanEvent.END: EpisodeEvent.TIMEOUT}
OUTCOMES = {EpisodeEvent.SUCCESS: "success", EpisodeEvent.IR_FAILURE: "IR failure",
            EpisodeEvent.TIMEOUT: "timeout", EpisodeEvent.ABORT: "aborted"}
EVENTS_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


def note_figures(note: str) -> dict[str, float]:
    """`key=value` pairs of an outcome event's note (the policy node writes return=..., failures=...)."""
    figures = {}
    for word in note.split():
        key, _, value = word.partition("=")
        try:
            figures[key] = float(value)
        except ValueError:
            continue
    return figures


class ConsoleNode(Node):
    def __init__(self) -> None:
        super().__init__(NODE, automatically_declare_parameters_from_overrides=True)
        own = read_own_parameters(self, NODE_PARAMETERS)
        teleop = own["mode"] == "teleop"
        self.console = TerminalConsole(keys=TELEOP_KEYS if teleop else KEYS,
                                       help_line=TELEOP_KEYS_HELP if teleop else KEYS_HELP).__enter__()
        self._task, self._mode, self._total = own["task"], own["mode"], int(own["num_episodes"])
        self._episode, self._phase, self._step = 0, "waiting_for_reset", 0
        self._risk: float | None = None
        self._overrides = self._failures = self._updates = 0
        self._last_return: float | None = None
        self._message = "waiting for the policy node"
        self._events = self.create_publisher(EpisodeEvent, "/farl/episode", EVENTS_QOS)
        self.create_subscription(EpisodeEvent, "/farl/episode", self._on_event, EVENTS_QOS)
        self.create_subscription(SafetyVerdict, "/farl/safety", self._on_verdict,
                                 QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE))
        self.create_timer(0.1, self._poll, clock=Clock(clock_type=ClockType.STEADY_TIME))  # keys: wall time

    def _on_event(self, msg: EpisodeEvent) -> None:
        self._episode = int(msg.episode_index)
        if msg.event == EpisodeEvent.RESET:
            self._phase, self._message = "waiting_for_reset", "scene reset? press s to start"
        elif msg.event == EpisodeEvent.START:
            self._phase, self._step, self._overrides, self._message = "running", 0, 0, f"started by {msg.source}"
        elif msg.event in OUTCOMES and msg.source == "farl_policy":
            figures = note_figures(msg.note)
            self._phase = "ended"
            self._last_return = figures.get("return", self._last_return)
            self._failures = int(figures.get("failures", self._failures))
            self._updates = int(figures.get("updates", self._updates))
            self._message = f"episode {self._episode + 1}: {OUTCOMES[msg.event]}"
        elif msg.event == EpisodeEvent.DISCARD and msg.source == "farl_policy":
            self._phase, self._message = "ended", f"episode {self._episode + 1}: discarded, recorded again"

    def _on_verdict(self, msg: SafetyVerdict) -> None:
        self._step += 1
        self._risk = float(msg.risk) if math.isfinite(msg.risk) else None
        self._overrides += bool(msg.overridden)

    def _poll(self) -> None:
        for event in self.console.poll():
            self._events.publish(EpisodeEvent(header=Header(stamp=self.get_clock().now().to_msg()),
                                              event=EVENTS[event], episode_index=self._episode, source=SOURCE,
                                              note=f"key at {time.strftime('%H:%M:%S')}"))
            self._message = f"sent {event.value}"
        self.console.show(ConsoleView(
            task=self._task, mode=self._mode, episode=self._episode, episodes=self._total, phase=self._phase,
            step=self._step, risk=self._risk, overrides=self._overrides, failures=self._failures,
            episode_return=math.nan, last_return=self._last_return, updates=self._updates, message=self._message))


    def close(self) -> None:
        """Give the terminal back as it was."""
        self.console.close()


def process() -> Process:
    return closing_process(NODE, ConsoleNode, threads=1)


def main(args: list[str] | None = None) -> None:
    run(process(), args)
