"""`ros2 launch farl bringup.launch.py` on franky-sim, as launch_testing runs it on a ROS 2 machine.

For a workstation with apt ROS 2 and this workspace built (`colcon build`, `source install/setup.bash`):
`launch_test tests/test_bringup_launch.py` (or pytest, whose launch_testing plugin collects it).
Skipped where launch_testing is absent, as in this venv (not on PyPI); tests/test_ros_graph.py
starts the same node table process by process there.
"""

from __future__ import annotations

import os
import time
import unittest
from pathlib import Path

import pytest

pytest.importorskip("launch_testing")
pytest.importorskip("launch_ros")

import launch_testing.actions  # noqa: E402
import rclpy  # noqa: E402
from launch.actions import IncludeLaunchDescription, TimerAction  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402

from farl_interfaces.msg import EpisodeEvent  # noqa: E402
from launch import LaunchDescription  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CHECKPOINTS = REPO / "checkpoints" / "franka" / "bounded-soccer" / "pretrain"
OUT = Path(os.environ.get("FARL_LAUNCH_TEST_OUT", "/tmp/farl-launch-test")) / str(os.getpid())


def generate_test_description() -> LaunchDescription:
    bringup = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(REPO / "launch" / "bringup.launch.py")),
        launch_arguments={"robot": "sim", "task": "bounded-soccer", "mode": "finetune", "episodes": "2",
                          "config": str(REPO / "config" / "farl.yaml"),
                          "task_policy": str(CHECKPOINTS / "task_policy"),
                          "recovery_policy": str(CHECKPOINTS / "recovery_policy"),
                          "world_model": str(CHECKPOINTS / "world_model"), "out": str(OUT)}.items())
    return LaunchDescription([bringup, TimerAction(period=1.0, actions=[launch_testing.actions.ReadyToTest()])])


class TestBringup(unittest.TestCase):
    def test_two_episodes_end_with_outcomes_and_episodes_csv(self) -> None:
        rclpy.init()
        node = rclpy.create_node("bringup_probe")
        outcomes: list[EpisodeEvent] = []
        node.create_subscription(EpisodeEvent, "/farl/episode",
                                 lambda m: outcomes.append(m) if m.source == "farl_policy" and m.event in
                                 (EpisodeEvent.SUCCESS, EpisodeEvent.IR_FAILURE, EpisodeEvent.TIMEOUT,
                                  EpisodeEvent.ABORT) else None, 10)
        try:
            deadline = time.monotonic() + 900.0
            while len(outcomes) < 2 and time.monotonic() < deadline:
                rclpy.spin_once(node, timeout_sec=0.1)
            self.assertEqual(len(outcomes), 2)
            rows = (OUT / "episodes.csv").read_text().splitlines()[1:]
            self.assertEqual(len(rows), 2)
        finally:
            node.destroy_node()
            rclpy.shutdown()
