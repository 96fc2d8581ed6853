"""`farl bench ros`: round-trip latency of FARL's message sizes between two processes over Fast DDS.

The 5 Hz control loop has 200 ms per step; every hop of the ROS graph (camera -> perception ->
policy -> shield -> bridge) spends part of it in the middleware. This measures that part for the
two payloads that matter: an `ObjectArray` of 3 objects (perception's output, a few hundred
bytes) and a 640x480 rgb8 colour `Image` with its 16UC1 aligned depth (what realsense-ros sends
perception, 1.5 MB a frame). An echo node runs as its own process (as `ros2 launch` would start
it) and sends every message straight back; one message is in flight at a time, and the round
trip is timed in the sender. The reference, timed in the same run, is rclpy serialising and
deserialising the same payload in one process: the CPU cost the middleware cannot avoid.

Run it as `farl bench ros [--count N] [--out F.json]`; `python -m farl.ros_latency_node` is the echo.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import rclpy
from rclpy.context import Context
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import Image

from farl_interfaces.msg import ObjectArray, ObjectState

PING, PONG = "/farl/bench/ping", "/farl/bench/pong"
# Reliable, depth 10 for both: the benchmark counts every message, none may be dropped.
QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
CONTROL_PERIOD_S = 0.2  # the paper's 5 Hz loop


def object_array() -> list[Any]:
    """What perception publishes for a three-object task."""
    message = ObjectArray()
    message.header.frame_id = "base"
    message.objects = [ObjectState(name=name, confidence=0.9, source="colour") for name in ("puck", "vase", "goal")]
    return [message]


def rgbd_frame() -> list[Any]:
    """A realsense-ros frame: rgb8 colour and 16UC1 aligned depth, 640x480 each."""
    rng = np.random.default_rng(0)
    colour = Image(height=480, width=640, encoding="rgb8", step=640 * 3)
    colour.data = rng.integers(0, 256, 480 * 640 * 3, dtype=np.uint8).tobytes()
    depth = Image(height=480, width=640, encoding="16UC1", step=640 * 2)
    depth.data = rng.integers(300, 2000, 480 * 640, dtype="<u2").tobytes()
    return [colour, depth]


PAYLOADS: dict[str, Callable[[], list[Any]]] = {"object_array_3": object_array, "rgbd_640x480": rgbd_frame}


def topic_types(name: str) -> list[type]:
    return [type(m) for m in PAYLOADS[name]()]


class EchoNode(Node):
    """Sends every ping straight back on the matching pong topic (one topic pair per message of a payload)."""

    def __init__(self, payload_name: str, context: Context | None = None) -> None:
        super().__init__("farl_bench_echo", context=context)
        for index, msg_type in enumerate(topic_types(payload_name)):
            pong = self.create_publisher(msg_type, f"{PONG}_{index}", QOS)
            self.create_subscription(msg_type, f"{PING}_{index}", pong.publish, QOS, raw=True)


def start_echo(payload_name: str) -> subprocess.Popen:
    """The echo node as its own process, on this process's ROS domain (inherited environment)."""
    return subprocess.Popen([sys.executable, "-m", "farl.ros_latency_node", payload_name], env=dict(os.environ))


def round_trips(payload_name: str, count: int, warmup: int = 20, timeout_s: float = 5.0) -> dict[str, Any]:
    """Round-trip times (s) of `count` pings through an echo process, and how many never came back."""
    context = Context()
    rclpy.init(context=context)
    echo = start_echo(payload_name)
    try:
        node = Node("farl_bench_ping", context=context)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        messages = PAYLOADS[payload_name]()
        serialised = [serialize_message(m) for m in messages]
        publishers = [node.create_publisher(type(m), f"{PING}_{i}", QOS) for i, m in enumerate(messages)]
        returned: set[int] = set()
        for index, msg in enumerate(messages):
            node.create_subscription(type(msg), f"{PONG}_{index}", lambda _, i=index: returned.add(i), QOS, raw=True)
        deadline = time.monotonic() + 60.0  # the echo process starting and being discovered
        while not all(p.get_subscription_count() for p in publishers) and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        samples, lost = [], 0
        for attempt in range(warmup + count):
            returned.clear()
            start = time.perf_counter()
            for publisher, raw in zip(publishers, serialised, strict=True):
                publisher.publish(raw)
            while len(returned) < len(messages) and time.perf_counter() - start < timeout_s:
                executor.spin_once(timeout_sec=timeout_s)
            elapsed = time.perf_counter() - start
            if attempt >= warmup:
                if len(returned) < len(messages):
                    lost += 1
                else:
                    samples.append(elapsed)
        executor.shutdown()
        node.destroy_node()
    finally:
        echo.terminate()
        echo.wait(10)
        rclpy.try_shutdown(context=context)
    reference = []
    for _ in range(count):
        start = time.perf_counter()
        for msg in messages:
            deserialize_message(serialize_message(msg), type(msg))
        reference.append(time.perf_counter() - start)
    return {"bytes": sum(len(raw) for raw in serialised), "samples_s": samples, "lost": lost,
            "reference_s": reference}


def bench_ros(count: int = 500) -> dict[str, Any]:
    """p50/p99 round trip per payload, its share of the control period, and the in-process reference."""
    from farl.bench import percentiles
    from farl_core.ros_domain import claim_isolated_domain

    claim_isolated_domain()
    results: dict[str, Any] = {"control_period_ms": CONTROL_PERIOD_S * 1e3, "count": count}
    for name in PAYLOADS:
        measured = round_trips(name, count)
        trip, reference = percentiles(measured["samples_s"]), percentiles(measured["reference_s"])
        results[name] = {"bytes": measured["bytes"], "lost": measured["lost"], "round_trip": trip,
                         "serialise_deserialise_in_process": reference,
                         "p99_share_of_period": trip["p99_ms"] / (CONTROL_PERIOD_S * 1e3),
                         "p50_ratio_to_reference": trip["p50_ms"] / reference["p50_ms"]}
    return results


def main(argv: list[str] | None = None) -> None:
    """The echo process: `python -m farl.ros_latency_node PAYLOAD`."""
    argv = sys.argv[1:] if argv is None else argv
    rclpy.init()
    node = EchoNode(argv[0])
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
