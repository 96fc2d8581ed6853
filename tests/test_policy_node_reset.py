"""The policy node alone, as its own process with the shipped parameter file, against a bridge that cannot reset.

A reset that fails between episodes (a robot error the bridge could not clear) waits for the operator's
`/farl_bridge/recover`: the node asks again every RESET_RETRY_S, one log line each time, and starts the
episode's RESET -> START sequence once a reset succeeds.  The bridge here is the test's own Trigger service.
"""

from __future__ import annotations

import time
from itertools import pairwise
from pathlib import Path

import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_srvs.srv import Trigger

from farl.graph import GraphArgs, graph_nodes, ros_arguments, write_bringup_parameters
from farl.policy_node import RESET_RETRY_S
from farl_interfaces.msg import EpisodeEvent

REPO = Path(__file__).resolve().parent.parent
CHECKPOINTS = REPO / "checkpoints" / "franka" / "bounded-soccer" / "pretrain"
REFUSALS = 2
WHY = "robot in reflex mode, recovery failed 3 times"


def test_a_failed_reset_is_asked_again_every_few_seconds_until_the_operator_recovers_the_robot(
        start_node, ros_context, shipped_config: Path, tmp_path: Path) -> None:
    args = GraphArgs(task="bounded-soccer", mode="deploy", camera="ground-truth", config=shipped_config,
                     task_policy=str(CHECKPOINTS / "task_policy"), recovery_policy=str(CHECKPOINTS / "recovery_policy"),
                     world_model=str(CHECKPOINTS / "world_model"), out=str(tmp_path / "run"), episodes=1,
                     sim_time=False)  # no franky-sim here, so no /clock: the node keeps the wall clock
    nodes = graph_nodes(args)
    table = next(n for n in nodes if n.executable == "policy_node")
    policy = start_node("policy_node", *ros_arguments(table, shipped_config, write_bringup_parameters(args, nodes)))

    calls: list[float] = []
    events: list[EpisodeEvent] = []

    def reset(_: Trigger.Request, answer: Trigger.Response) -> Trigger.Response:
        calls.append(time.monotonic())
        answer.success, answer.message = (False, WHY) if len(calls) <= REFUSALS else (True, "at home")
        return answer

    bridge = rclpy.create_node("farl_bridge", context=ros_context)
    bridge.create_service(Trigger, "/farl_bridge/reset", reset)
    bridge.create_subscription(EpisodeEvent, "/farl/episode", events.append,
                               QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(bridge)
    deadline = time.monotonic() + 240.0  # loading the checkpoints on a loaded 2-core machine
    try:
        while not any(e.event == EpisodeEvent.RESET and e.source == "farl_policy" for e in events):
            if time.monotonic() > deadline or policy.process.poll() is not None:
                pytest.fail(f"no RESET after {len(calls)} reset calls; the node's output:\n{policy.output()[-3000:]}")
            executor.spin_once(timeout_sec=0.05)
    finally:
        executor.shutdown()
        bridge.destroy_node()

    assert len(calls) == REFUSALS + 1, calls  # asked again after each refusal, never again after the success
    gaps = [later - earlier for earlier, later in pairwise(calls)]
    assert all(gap >= RESET_RETRY_S - 0.1 for gap in gaps), gaps  # not one request per timer tick
    said = [line for line in policy.output().splitlines() if "reset failed" in line]
    assert len(said) == REFUSALS and all(WHY in line and "/farl_bridge/recover" in line for line in said), said
    assert policy.interrupt() == 0, policy.output()[-3000:]
