"""`farl bench recorder`: does the recorder node keep up, and how long does `farl data build` take per recorded hour.

The recorder node runs as its own process (as `record:=true` starts it) on real rclpy and Fast DDS.
This process publishes one episode at the paper's rates, each topic from its own timer, as the
graph does: /farl/objects, /farl/action/proposed, /farl/action/command and /farl/safety at the 5 Hz
control rate, /farl/robot_state at the bridge's 30 Hz, and, in the camera run, the D435 at 640x480
and 30 fps (rgb8 colour, 16UC1 depth, CameraInfo; ~46 MB/s, uncompressed as realsense-ros sends
it).  The figures per run: messages and bytes published vs found in the bag (a dropped message is a
count mismatch against what `camera_every` keeps), and the bag's write rate in messages/s and MB/s
beside the publishing rate measured in the same run (recorded / expected is 1.0 when the recorder
keeps up).

Then `farl data build` on the camera-less bag: seconds of build per recorded hour (the ratio build
time / recorded time, times 3600).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.rosbag2 import Reader
from tqdm import tqdm

from farl_core.errors import FarlError
from farl_core.ros_domain import claim_isolated_domain

CONTROL_HZ, STATE_HZ, CAMERA_HZ = 5.0, 30.0, 30.0
WIDTH, HEIGHT = 640, 480
TASK = "bounded-soccer"


def bench_recorder(seconds: float = 20.0, camera_every: int = 1, progress: bool = True) -> dict[str, Any]:
    """One episode of `seconds` without and one with the camera (the recorder keeping every `camera_every`-th
    frame); then the build time of the first."""
    claim_isolated_domain()
    import rclpy
    from rclpy.context import Context

    context = Context()
    rclpy.init(context=context)
    results: dict[str, Any] = {"seconds": seconds, "camera_every": camera_every}
    try:
        with tempfile.TemporaryDirectory() as scratch:
            root = Path(scratch)
            for camera in (False, True):
                bags = root / ("camera" if camera else "farl")
                results["camera" if camera else "no_camera"] = _record(context, bags, camera, camera_every, seconds,
                                                                       progress)
            results["build"] = _build_time(root / "farl")
    finally:
        rclpy.shutdown(context=context)
    return results


def _messages(camera: bool) -> dict[str, tuple[Any, float]]:
    """topic -> (message to publish, rate Hz): contents that deserialise and build as a real episode's would."""
    from geometry_msgs.msg import Point
    from sensor_msgs.msg import CameraInfo, Image

    from farl_interfaces.msg import Action, ObjectArray, ObjectState, RobotState, SafetyVerdict

    ball = ObjectState(name="ball", position=Point(x=0.45, y=0.0, z=0.03), confidence=1.0, source="sim")
    state = RobotState(gripper_width=0.0, joint_positions=[0.0] * 7, joint_velocities=[0.0] * 7)
    state.ee_pose.position.x, state.ee_pose.position.z, state.ee_pose.orientation.w = 0.4, 0.1, 1.0
    action = Action(delta=[0.5, 0.0, 0.0, 1.0], observation=[0.0] * 8, log_prob=0.0)
    topics: dict[str, tuple[Any, float]] = {
        "/farl/objects": (ObjectArray(objects=[ball]), CONTROL_HZ), "/farl/robot_state": (state, STATE_HZ),
        "/farl/action/proposed": (action, CONTROL_HZ), "/farl/action/command": (action, CONTROL_HZ),
        "/farl/safety": (SafetyVerdict(), CONTROL_HZ)}
    if camera:
        color = Image(height=HEIGHT, width=WIDTH, encoding="rgb8", step=WIDTH * 3)
        color.data = np.random.default_rng(0).integers(0, 255, HEIGHT * WIDTH * 3, dtype=np.uint8).tobytes()
        depth = Image(height=HEIGHT, width=WIDTH, encoding="16UC1", step=WIDTH * 2)
        depth.data = np.full(HEIGHT * WIDTH, 700, dtype=np.uint16).tobytes()
        topics |= {"/camera/camera/color/image_raw": (color, CAMERA_HZ),
                   "/camera/camera/aligned_depth_to_color/image_raw": (depth, CAMERA_HZ),
                   "/camera/camera/color/camera_info": (CameraInfo(height=HEIGHT, width=WIDTH), CAMERA_HZ)}
    return topics


def _record(context: Any, bags: Path, camera: bool, camera_every: int, seconds: float,
            progress: bool) -> dict[str, Any]:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from rclpy.serialization import serialize_message

    from farl_interfaces.msg import EpisodeEvent

    executable = Path(sys.executable).with_name("recorder_node")
    log_path = bags.with_suffix(".log")
    with log_path.open("wb") as log:
        parameters = {"out": bags, "task": TASK, "role": "online", "camera": str(camera).lower(),
                      "camera_every": camera_every, "min_free_gib": 0.0}
        arguments = [item for name, value in parameters.items() for item in ("-p", f"{name}:={value}")]
        recorder = subprocess.Popen([str(executable), "--ros-args", *arguments], stdout=log, stderr=subprocess.STDOUT)
    node = rclpy.create_node("recorder_bench_publisher", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    episodes = node.create_publisher(EpisodeEvent, "/farl/episode", reliable)
    messages = _messages(camera)  # built once: the camera frames are megabytes of generated pixels
    published = {topic: 0 for topic in messages}
    sizes = {topic: len(serialize_message(msg)) for topic, (msg, _) in messages.items()}
    publishers = {}
    for topic, (msg, _) in messages.items():
        qos = qos_profile_sensor_data if topic.startswith("/camera") else reliable
        publishers[topic] = node.create_publisher(type(msg), topic, qos)

    def spin(until: float) -> None:
        while time.monotonic() < until:
            executor.spin_once(timeout_sec=0.01)

    try:
        deadline = time.monotonic() + 60.0
        wanted = len(publishers) + 1
        while time.monotonic() < deadline and (node.count_subscribers("/farl/episode") == 0 or sum(
                node.count_subscribers(t) > 0 for t in publishers) + 1 < wanted):
            if recorder.poll() is not None:
                raise FarlError(f"the recorder node exited: {log_path.read_text()[-1500:]}")
            spin(time.monotonic() + 0.1)
        episodes.publish(EpisodeEvent(event=EpisodeEvent.START, episode_index=0, source="operator"))
        spin(time.monotonic() + 0.5)

        def timer(topic: str):
            def publish() -> None:
                msg = messages[topic][0]
                if hasattr(msg, "header"):
                    msg.header.stamp = node.get_clock().now().to_msg()
                publishers[topic].publish(msg)
                published[topic] += 1
            return publish

        timers = [node.create_timer(1.0 / rate, timer(topic)) for topic, (_, rate) in messages.items()]
        start = time.monotonic()
        bar = tqdm(total=int(seconds), desc=f"recorder {'with' if camera else 'without'} camera", unit="s",
                   disable=not progress)
        while (now := time.monotonic()) < start + seconds:
            spin(min(start + seconds, now + 1.0))
            bar.update(min(int(time.monotonic() - start), int(seconds)) - bar.n)
        bar.close()
        elapsed = time.monotonic() - start
        for t in timers:
            node.destroy_timer(t)
        spin(time.monotonic() + 1.0)  # let the last messages arrive before the episode closes
        episodes.publish(EpisodeEvent(event=EpisodeEvent.TIMEOUT, episode_index=0, source="farl_policy"))
        bag = bags / "episode_0000"
        deadline = time.monotonic() + 60.0
        while not (bag / "metadata.yaml").is_file() and time.monotonic() < deadline:
            spin(time.monotonic() + 0.2)
        if not (bag / "metadata.yaml").is_file():
            raise FarlError(f"the recorder did not close the episode's bag: {log_path.read_text()[-1500:]}")
    finally:
        executor.shutdown()
        node.destroy_node()
        recorder.send_signal(signal.SIGINT)
        try:
            recorder.wait(30)
        except subprocess.TimeoutExpired:
            recorder.kill()
    recorded: dict[str, int] = {}
    with Reader(bag) as reader:
        for connection, _, _ in reader.messages():
            recorded[connection.topic] = recorded.get(connection.topic, 0) + 1
    bag_bytes = sum(f.stat().st_size for f in bag.glob("*.mcap"))
    sent = sum(published.values())
    sent_bytes = sum(published[t] * sizes[t] for t in published)
    expected = {t: -(-n // camera_every) if t.startswith("/camera") else n for t, n in published.items()}
    kept = sum(recorded.get(t, 0) for t in published)
    return {"topics": {t: {"published": published[t], "recorded": recorded.get(t, 0)} for t in published},
            "published_msgs_per_s": sent / elapsed, "published_mb_per_s": sent_bytes / elapsed / 1e6,
            "recorded_msgs_per_s": kept / elapsed, "recorded_mb_per_s": bag_bytes / elapsed / 1e6,
            "dropped": sum(expected.values()) - kept, "ratio_recorded_to_expected": kept / sum(expected.values()),
            "bag_mb": bag_bytes / 1e6}


def _build_time(bags: Path) -> dict[str, Any]:
    from farl.data_build import bag_summary, build_dataset

    bag = bags / "episode_0000"
    recorded_s = bag_summary(bag).duration_s
    start = time.perf_counter()
    _, _, steps = build_dataset([bag], TASK, bags.parent / "dataset")
    build_s = time.perf_counter() - start
    return {"recorded_s": recorded_s, "build_s": build_s, "steps": steps,
            "build_s_per_recorded_hour": build_s / recorded_s * 3600.0}
