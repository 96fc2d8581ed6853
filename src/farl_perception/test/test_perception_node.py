"""The ROS node on a ROS 2 machine: with no camera publishing it still answers, every object stale.

Skipped where rclpy is not installed (this CI); the node's parts (TopicSource, FramePairer, the
message conversion, the config from parameters) are tested without ROS in their own modules.
"""

from __future__ import annotations

import time

import pytest

rclpy = pytest.importorskip("rclpy")


def test_node_publishes_stale_objects_while_the_camera_is_silent() -> None:
    from farl_interfaces.msg import ObjectArray
    from farl_perception.perception_node import PerceptionNode

    rclpy.init()
    try:
        node = PerceptionNode()
        received: list[ObjectArray] = []
        listener = rclpy.create_node("listener")
        listener.create_subscription(ObjectArray, "/farl/objects", received.append, 10)
        executor = rclpy.executors.MultiThreadedExecutor(num_threads=2)
        executor.add_node(node)
        executor.add_node(listener)
        deadline = time.monotonic() + 5.0
        while not received and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
        assert received, "no ObjectArray within 5 s"
        assert {o.name for o in received[0].objects} == {"object", "wall"}
        assert all(o.stale for o in received[0].objects)
    finally:
        rclpy.shutdown()
