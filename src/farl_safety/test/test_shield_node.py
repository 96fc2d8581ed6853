"""The shield node as its own process on real rclpy: answers a proposal with a command and a verdict under its
stamp, follows the fine-tuned task policy when a proposal says it is newer, and refuses NaN without a command."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import rclpy
import torch
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import Header

from farl_core.franka_tasks import get_franka_task
from farl_interfaces.msg import Action, SafetyVerdict
from farl_policy.gaussian import GaussianPolicy

REPO = Path(__file__).resolve().parents[3]
PRETRAIN = REPO / "checkpoints" / "franka" / "bounded-soccer" / "pretrain"
QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


def test_shield_node_answers_follows_policy_updates_and_refuses_nan(start_node, ros_context, shipped_config: Path,
                                                                     tmp_path: Path) -> None:
    spec = get_franka_task("bounded-soccer").spec
    updated = tmp_path / "run" / "policy"
    fine_tuned = GaussianPolicy.load(PRETRAIN / "task_policy" / "policy", kind="task_policy", spec=spec)
    with torch.no_grad():
        for parameter in fine_tuned.parameters():
            parameter.add_(0.5)  # a visibly different policy: the critic's rollouts change with it
    fine_tuned.save(updated, kind="task_policy", extra={"updates": 1})
    shield = start_node("shield_node", "--params-file", str(shipped_config), "-p", "task:=bounded-soccer",
                        "-p", f"task_policy:={PRETRAIN / 'task_policy'}",
                        "-p", f"recovery_policy:={PRETRAIN / 'recovery_policy'}",
                        "-p", f"world_model:={PRETRAIN / 'world_model'}", "-p", f"updated_policy:={updated}",
                        "-p", f"config_file:={shipped_config}")
    node = rclpy.create_node("policy_stand_in", context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    commands: list[Action] = []
    verdicts: list[SafetyVerdict] = []
    node.create_subscription(Action, "/farl/action/command", commands.append, QOS)
    node.create_subscription(SafetyVerdict, "/farl/safety", verdicts.append, QOS)
    propose = node.create_publisher(Action, "/farl/action/proposed", QOS)
    observation = [0.5, 0.0, 0.2, 0.08, 0.55, 0.05, 0.7, 0.0][: spec.obs_dim]
    observation += [0.0] * (spec.obs_dim - len(observation))

    def answered(version: int, sec: int, delta: list[float], timeout_s: float = 120.0) -> SafetyVerdict | None:
        """Propose under stamp `sec` (again every half second until the node, starting, has heard it)."""
        msg = Action(header=Header(), delta=delta, observation=observation, log_prob=0.0, policy_version=version)
        msg.header.stamp.sec = sec
        deadline, last = time.monotonic() + timeout_s, 0.0
        while time.monotonic() < deadline:
            if time.monotonic() - last > 0.5:
                propose.publish(msg)
                last = time.monotonic()
            executor.spin_once(timeout_sec=0.05)
            mine = [v for v in verdicts if v.header.stamp.sec == sec]
            if mine:
                return mine[0]
        return None

    try:
        first = answered(0, 1, [0.3, 0.0, 0.0, 0.0])
        assert first is not None, shield.output()
        assert np.isfinite(first.risk) and first.threshold == np.float32(0.3)
        command = next(c for c in commands if c.header.stamp.sec == 1)
        assert list(command.observation) == observation  # the executed action keeps what it was chosen for
        after_update = answered(1, 2, [0.3, 0.0, 0.0, 0.0])
        assert after_update is not None and "task policy reloaded: PPO update 1" in shield.output(), shield.output()
        assert after_update.risk != first.risk  # same (s, a), the fine-tuned policy's rollout
        assert answered(1, 3, [float("nan"), 0.0, 0.0, 0.0], timeout_s=5.0) is None  # no verdict, no command
        assert not [c for c in commands if c.header.stamp.sec == 3], "a NaN proposal reached the bridge"
        assert "proposal refused" in shield.output() and "NaN" in shield.output()
    finally:
        executor.shutdown()
        node.destroy_node()
    assert shield.interrupt() == 0, shield.output()
