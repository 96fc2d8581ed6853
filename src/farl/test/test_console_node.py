"""The operator console node in a terminal (a pseudo-terminal here, as over SSH): keys become /farl/episode events."""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy

from farl_interfaces.msg import EpisodeEvent

QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


# (mode, a key that ends the episode, the event it sends, a key of the other mode's console that does nothing here,
#  how the console is stopped afterwards: Ctrl-C, or SIGTERM as `ros2 launch` escalates)
CASES = [("finetune", b"a", EpisodeEvent.ABORT, b"e", signal.SIGTERM),     # abort
         ("teleop", b"r", EpisodeEvent.ABORT, b"a", signal.SIGINT),        # discard and re-record (policy: DISCARD)
         ("teleop", b"e", EpisodeEvent.TIMEOUT, b"a", signal.SIGINT)]      # end and save a demonstration (truncated)


@pytest.mark.parametrize(("mode", "key", "event", "not_a_key", "stop"), CASES)
def test_keys_in_the_console_terminal_start_and_end_the_episode_it_was_told_about(
        ros_context, tmp_path: Path, mode: str, key: bytes, event: int, not_a_key: bytes, stop: int) -> None:
    main, terminal = pty.openpty()
    assert termios.tcgetattr(terminal)[3] & termios.ICANON  # a fresh terminal is line-buffered
    log = (tmp_path / "console.log").open("wb")
    console = subprocess.Popen([str(Path(sys.executable).with_name("console_node")), "--ros-args", "-p",
                                "task:=bounded-soccer", "-p", f"mode:={mode}"], stdin=terminal, stdout=log,
                               stderr=subprocess.STDOUT)
    node = rclpy.create_node("policy_stand_in", context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    heard: list[EpisodeEvent] = []
    node.create_subscription(EpisodeEvent, "/farl/episode", heard.append, QOS)
    say = node.create_publisher(EpisodeEvent, "/farl/episode", QOS)

    def operator_events() -> list[int]:
        return [(m.event, m.episode_index) for m in heard if m.source == "operator"]

    def spin_until(condition, timeout_s: float = 90.0, during=None) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not condition():
            if during is not None:
                during()
            executor.spin_once(timeout_sec=0.1)
        return condition()

    try:
        # the policy node's RESET for episode 3, said until the console has heard it and the key has an answer
        def reset_and_press() -> None:
            say.publish(EpisodeEvent(event=EpisodeEvent.RESET, episode_index=3, source="farl_policy"))
            os.write(main, b"s")
        assert spin_until(lambda: (EpisodeEvent.START, 3) in operator_events(), during=reset_and_press), \
            (tmp_path / "console.log").read_text(errors="replace")
        os.write(main, key)
        assert spin_until(lambda: (event, 3) in operator_events())
        for other in (b"x", not_a_key):  # not keys here: nothing is sent
            os.write(main, other)
        spin_until(lambda: False, timeout_s=1.0)
        assert {sent for sent, _ in operator_events()} == {EpisodeEvent.START, event}
    finally:
        executor.shutdown()
        node.destroy_node()
        console.send_signal(stop)
        assert console.wait(30) == 0, (tmp_path / "console.log").read_text(errors="replace")
        assert termios.tcgetattr(terminal)[3] & termios.ICANON, "the console left the terminal in cbreak mode"
        os.close(main)
        os.close(terminal)
        log.close()
