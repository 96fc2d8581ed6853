"""The recorder node as its own process on real rclpy: one labelled bag per episode from /farl/episode, and a
`kill -9` mid-episode keeps every finished episode's bag."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosbags.rosbag2 import Reader

from farl_interfaces.msg import EpisodeEvent, ObjectArray, ObjectState
from farl_teleop.episode_bags import farl_typestore, finished_episodes, read_label

QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


def test_recorder_writes_one_bag_per_episode_and_survives_kill_9(start_node, ros_context, tmp_path: Path) -> None:
    bags = tmp_path / "bags"
    recorder = start_node("recorder_node", "-p", f"out:={bags}", "-p", "task:=bounded-soccer", "-p", "role:=task",
                          "-p", "min_free_gib:=0.0")
    node = rclpy.create_node("graph_stand_in", context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    episodes = node.create_publisher(EpisodeEvent, "/farl/episode", QOS)
    objects = node.create_publisher(ObjectArray, "/farl/objects", QOS)

    def spin(seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.02)

    def episode(index: int, frames: int) -> None:
        episodes.publish(EpisodeEvent(event=EpisodeEvent.START, episode_index=index, source="sim_human"))
        spin(0.3)
        for k in range(frames):
            msg = ObjectArray(objects=[ObjectState(name="ball", source="sim")])
            msg.header.stamp.sec = index * 100 + k
            objects.publish(msg)
            spin(0.05)

    try:
        # The recorder is up once both our writers have matched its readers (the DDS match, not the graph cache,
        # which can list a subscription before its reader has matched: the first frame was then lost); the
        # reader side matches our writers at about the same time, so a short settle follows.
        deadline = time.monotonic() + 60.0
        while (episodes.get_subscription_count() == 0 or objects.get_subscription_count() == 0) and \
                time.monotonic() < deadline:
            spin(0.1)
        spin(0.5)
        episode(0, 10)
        episodes.publish(EpisodeEvent(event=EpisodeEvent.SUCCESS, episode_index=0, source="farl_policy"))
        deadline = time.monotonic() + 30.0
        while not finished_episodes(bags) and time.monotonic() < deadline:
            spin(0.1)
        episode(1, 5)  # then the recorder dies mid-episode
        recorder.process.send_signal(signal.SIGKILL)
        recorder.process.wait(10)
    finally:
        executor.shutdown()
        node.destroy_node()
    finished = finished_episodes(bags)
    assert [b.name for b in finished] == ["episode_0000"], recorder.output()
    label = read_label(finished[0])
    assert (label.task, label.role, label.outcome, label.episode) == ("bounded-soccer", "task", "success", 0)
    typestore = farl_typestore()
    with Reader(finished[0]) as reader:
        topics = {conn.topic for conn in reader.connections}
        stamps = [typestore.deserialize_cdr(data, conn.msgtype).header.stamp.sec
                  for conn, _, data in reader.messages() if conn.topic == "/farl/objects"]
    assert {"/farl/objects", "/farl/episode"} <= topics and stamps == list(range(10)), (topics, stamps)
    assert (bags / ".episode_0001.partial").is_dir()  # the unfinished one, under a name no reader lists
