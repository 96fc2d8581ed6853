"""The in-process recorder writes the graph recorder's bags: mcap and rosbags open them, rclpy deserialises every
message, and `farl data build` rebuilds the episode's steps from them (including the tick that ended it)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from mcap.reader import make_reader
from rclpy.serialization import deserialize_message
from rosbags.rosbag2 import Reader, StoragePlugin, Writer

from farl.data_build import bag_summary, build_dataset, episode_transitions, read_bag
from farl_control.bridge import BridgeStatus, RobotStateSample
from farl_core.datasets import LABELS, load_dataset
from farl_core.episodes import Outcome
from farl_core.franka_tasks import get_franka_task
from farl_interfaces.msg import Action, EpisodeEvent, ObjectArray, RobotState
from farl_perception.objects import DetectionSource, ObjectEstimate
from farl_perception.objects import ObjectArray as Objects
from farl_teleop.episode_bags import BagError, farl_typestore, read_label
from farl_teleop.loop_recorder import LoopBagRecorder

RCLPY_TYPES = {"/farl/objects": ObjectArray, "/farl/robot_state": RobotState, "/farl/action/command": Action,
               "/farl/episode": EpisodeEvent}


def state(x: float) -> RobotStateSample:
    return RobotStateSample(ee_position=np.array([x, 0.0, 0.05]), ee_quaternion=np.array([1.0, 0.0, 0.0, 0.0]),
                            ee_twist=np.zeros(6), joints=np.linspace(0, 1, 7), joint_velocities=np.zeros(7),
                            gripper_width=0.01, has_errors=False, status=BridgeStatus.READY, error="")


def ball(stamp: float, x: float) -> Objects:
    return Objects(stamp, (ObjectEstimate("ball", np.array([x, 0.0, 0.03]), np.zeros(3), 1.0, False,
                                          DetectionSource.SIM),))


def record_episode(recorder: LoopBagRecorder, episode: int, ticks: int, outcome: Outcome) -> Path:
    recorder.begin(episode)
    recorder.started(np.array([0.6, 0.0]), 1.0)
    for k in range(ticks):
        stamp = 1.0 + 0.2 * k
        recorder.observed(ball(stamp, 0.45 + 0.01 * k), state(0.4 + 0.01 * k), stamp)
        recorder.commanded(np.array([0.5, 0.0, 0.0, 1.0]), np.zeros(8), stamp, float("nan"), 0)
    end = 1.0 + 0.2 * ticks
    recorder.observed(ball(end, 0.45 + 0.01 * ticks), state(0.4 + 0.01 * ticks), end)
    recorder.ended(outcome, "goal reached", end)
    return recorder.finish(outcome)


def test_loop_bags_open_everywhere_and_build_every_tick(tmp_path: Path) -> None:
    recorder = LoopBagRecorder(tmp_path, "bounded-soccer", "task", min_free_gib=0.0)
    bag = record_episode(recorder, 0, ticks=6, outcome=Outcome.SUCCESS)
    label = read_label(bag)
    assert (label.task, label.role, label.outcome, label.episode) == ("bounded-soccer", "task", "success", 0)
    with (bag / "episode_0000.mcap").open("rb") as f:
        topics = [channel.topic for _, channel, _ in make_reader(f).iter_messages()]
    assert topics.count("/farl/action/command") == 6 and topics.count("/farl/objects") == 7
    with Reader(bag) as reader:
        for connection, _, data in reader.messages():
            msg = deserialize_message(bytes(data), RCLPY_TYPES[connection.topic])   # rclpy reads our bytes
            if connection.topic == "/farl/robot_state":
                assert len(msg.joint_positions) == 7 and msg.gripper_width == 0.01
            if connection.topic == "/farl/episode" and msg.event == EpisodeEvent.START:
                assert list(msg.goal) == [0.6, 0.0] and msg.demo_label == EpisodeEvent.LABEL_TASK
    task = get_franka_task("bounded-soccer")
    read_label_, messages = read_bag(bag)
    steps = episode_transitions(task, read_label_, messages)
    assert steps is not None and len(steps) == 6          # every command, the last one's outcome from the end tick
    assert steps.terminated[-1] and not steps.terminated[:-1].any()
    assert np.allclose(steps.act[:, 0], 0.5)
    assert np.isclose(steps.next_obs[-1][4], 0.45 + 0.06)  # the ball where the ending tick saw it


def test_a_closed_gate_holds_back_ticks_until_it_opens(tmp_path: Path) -> None:
    """A recovery demo's approach is not recorded; the tick the device takes over on is, with its observation."""
    recorder = LoopBagRecorder(tmp_path, "bounded-soccer", "recovery", min_free_gib=0.0)
    handed_over = {"yes": False}
    recorder.gate = lambda: handed_over["yes"]
    recorder.begin(0)
    recorder.started(np.array([0.6, 0.0]), 0.0)
    for k in range(6):
        recorder.observed(ball(0.2 * k, 0.5), state(0.4), 0.2 * k)
        handed_over["yes"] = k >= 2              # the device takes over while tick 2's action is chosen
        recorder.commanded(np.zeros(4), np.zeros(8), 0.2 * k, float("nan"), 0)
    recorder.ended(Outcome.TIMEOUT, "ended by the operator", 1.2)
    bag = recorder.finish(Outcome.TIMEOUT)
    with Reader(bag) as reader:
        stamps = {}
        for connection, stamp, _ in reader.messages():
            stamps.setdefault(connection.topic, []).append(round(stamp / 1e8))
    assert stamps["/farl/objects"] == [4, 6, 8, 10] and stamps["/farl/action/command"] == [4, 6, 8, 10]
    assert len(stamps["/farl/episode"]) == 2                # START and the outcome are always in the bag


def test_a_ros2_bag_record_session_bag_is_split_into_its_episodes(tmp_path: Path) -> None:
    """`ros2 bag record` writes one unlabelled bag per session (sqlite3 on Humble): --role says what it holds.
    A DISCARD (the operator re-recorded that episode) drops it; a HANDOVER starts an episode's data there."""
    recorder = LoopBagRecorder(tmp_path / "episodes", "bounded-soccer", "task", min_free_gib=0.0)
    first = record_episode(recorder, 0, ticks=5, outcome=Outcome.SUCCESS)
    discarded = record_episode(recorder, 1, ticks=6, outcome=Outcome.TIMEOUT)
    second = record_episode(recorder, 2, ticks=4, outcome=Outcome.TIMEOUT)
    session = tmp_path / "rosbag2_2026_12_03-10_00_00"
    store = farl_typestore()
    outcome_events = {EpisodeEvent.SUCCESS, EpisodeEvent.TIMEOUT}
    with Writer(session, version=8, storage_plugin=StoragePlugin.SQLITE3) as writer:
        connections = {}

        def write(topic: str, msgtype: str, stamp: int, data: bytes) -> None:
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, msgtype, typestore=store)
            writer.write(connections[topic], stamp, data)

        for offset, bag in ((0, first), (10**10, discarded), (2 * 10**10, second)):  # 10 s apart, as in a session
            with Reader(bag) as reader:
                for connection, stamp, data in reader.messages():
                    msgtype = connection.msgtype
                    if connection.topic == "/farl/episode":
                        event = store.deserialize_cdr(bytes(data), msgtype)
                        if bag == discarded and event.event in outcome_events:
                            data = store.serialize_cdr(replace(event, event=EpisodeEvent.DISCARD), msgtype)
                        if bag == second and event.event == EpisodeEvent.START:  # the data starts at tick 2
                            handover = replace(event, event=EpisodeEvent.HANDOVER, source="farl_policy")
                            write("/farl/episode", msgtype, offset + 1_400_000_000 - 1,
                                  bytes(store.serialize_cdr(handover, msgtype)))
                    write(connection.topic, msgtype, stamp + offset, bytes(data))
    with pytest.raises(BagError, match="pass --role"):
        build_dataset([tmp_path / "rosbag2_2026_12_03-10_00_00"], "bounded-soccer", tmp_path / "data")
    path, episodes, steps = build_dataset([session], "bounded-soccer", tmp_path / "data", role="task")
    assert (episodes, steps) == (2, 5 + 2)   # the discarded one left out, the second from its handover
    data, labels = load_dataset(path, get_franka_task("bounded-soccer").spec)
    assert data.terminated.sum() == 1 and data.truncated.sum() == 1 and set(labels) == {LABELS["task"]}
    assert bag_summary(session).label is None
