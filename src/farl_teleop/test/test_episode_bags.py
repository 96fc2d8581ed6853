"""Episode bags: one labelled MCAP bag per episode, readable by rosbags and the mcap reader; a crash keeps the
finished ones; nothing is overwritten."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcap.reader import make_reader
from rosbags.rosbag2 import Reader

from farl_teleop.episode_bags import BagError, EpisodeBagWriter, farl_typestore, finished_episodes, read_label

TYPES = farl_typestore()


def objects_message(stamp_s: int) -> bytes:
    types = TYPES.types
    header = types["std_msgs/msg/Header"](stamp=types["builtin_interfaces/msg/Time"](sec=stamp_s, nanosec=0),
                                          frame_id="base")
    point = types["geometry_msgs/msg/Point"](x=0.5, y=0.0, z=0.03)
    velocity = types["geometry_msgs/msg/Vector3"](x=0.0, y=0.0, z=0.0)
    ball = types["farl_interfaces/msg/ObjectState"](name="ball", position=point, velocity=velocity, confidence=1.0,
                                                    stale=False, source="sim")
    msg = types["farl_interfaces/msg/ObjectArray"](header=header, objects=[ball])
    return bytes(TYPES.serialize_cdr(msg, "farl_interfaces/msg/ObjectArray"))


def record(writer: EpisodeBagWriter, episode: int, role: str, messages: int) -> None:
    writer.begin(episode, role)
    for k in range(messages):
        writer.write("/farl/objects", "farl_interfaces/msg/ObjectArray", (episode * 100 + k) * 10**9,
                     objects_message(episode * 100 + k))


def test_finished_episodes_are_labelled_bags_readable_by_rosbags_and_mcap(tmp_path: Path) -> None:
    writer = EpisodeBagWriter(tmp_path / "demos", "bounded-soccer", min_free_gib=0.0)
    record(writer, 0, "task", 5)
    first = writer.finish("success")
    record(writer, 1, "failure", 3)
    writer.finish("ir_failure")
    record(writer, 2, "recovery", 4)  # then the recorder is killed: never finished
    bags = finished_episodes(tmp_path / "demos")
    assert [b.name for b in bags] == ["episode_0000", "episode_0001"] and bags[0] == first
    assert read_label(bags[1]).role == "failure" and read_label(bags[1]).outcome == "ir_failure"
    assert read_label(bags[0]).task == "bounded-soccer"
    with Reader(bags[0]) as reader:
        stamps = [TYPES.deserialize_cdr(data, conn.msgtype).header.stamp.sec for conn, _, data in reader.messages()]
    assert stamps == [0, 1, 2, 3, 4]
    with (bags[1] / "episode_0001.mcap").open("rb") as f:
        channels = {channel.topic for _, channel, _ in make_reader(f).iter_messages()}
    assert channels == {"/farl/objects"}


def test_nothing_is_overwritten_and_a_full_disk_is_one_line(tmp_path: Path) -> None:
    writer = EpisodeBagWriter(tmp_path, "bounded-soccer", min_free_gib=0.0)
    record(writer, 0, "task", 1)
    writer.finish("success")
    with pytest.raises(BagError, match="never overwritten"):
        writer.begin(0, "task")
    full = EpisodeBagWriter(tmp_path, "bounded-soccer", min_free_gib=1e9)
    with pytest.raises(BagError, match="GiB free") as error:
        full.begin(1, "task")
    assert "\n" not in str(error.value)
    with pytest.raises(BagError, match="not a labelled FARL episode bag"):
        read_label(tmp_path / "nowhere")


def test_an_abandoned_episode_leaves_nothing(tmp_path: Path) -> None:
    writer = EpisodeBagWriter(tmp_path, "bounded-soccer", min_free_gib=0.0)
    record(writer, 3, "task", 2)
    writer.abandon()
    assert not any(tmp_path.iterdir())
