"""`farl data build` refuses what it cannot trust, each with one line: another task's bag, a bag without the
topics a step needs, damaged bytes; unfinished recordings are skipped with a warning. (The end-to-end build from
a live graph's bags is in tests/test_ros_graph.py.)"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from farl.data_build import bag_paths, build_dataset, read_bag
from farl_teleop.episode_bags import BagError, EpisodeBagWriter, farl_typestore

TYPES = farl_typestore()


def objects_bytes(sec: int) -> bytes:
    types = TYPES.types
    header = types["std_msgs/msg/Header"](stamp=types["builtin_interfaces/msg/Time"](sec=sec, nanosec=0),
                                          frame_id="base")
    msg = types["farl_interfaces/msg/ObjectArray"](header=header, objects=[])
    return bytes(TYPES.serialize_cdr(msg, "farl_interfaces/msg/ObjectArray"))


def objects_only_bag(root: Path, task: str, episode: int = 0, messages: int = 200) -> Path:
    writer = EpisodeBagWriter(root, task, min_free_gib=0.0)
    writer.begin(episode, "task")
    for k in range(messages):
        writer.write("/farl/objects", "farl_interfaces/msg/ObjectArray", k * 10**8, objects_bytes(k))
    return writer.finish("success")


def test_a_bag_without_the_topics_of_a_step_is_one_line(tmp_path: Path) -> None:
    bag = objects_only_bag(tmp_path, "bounded-soccer")
    with pytest.raises(BagError, match="no /farl/robot_state, /farl/action/command") as error:
        read_bag(bag)
    assert "\n" not in str(error.value)


def test_a_bag_of_another_task_is_one_line(tmp_path: Path) -> None:
    objects_only_bag(tmp_path, "fragile-push-wall")
    with pytest.raises(BagError, match="a bag of task 'fragile-push-wall', not 'bounded-soccer'"):
        build_dataset([tmp_path], "bounded-soccer", tmp_path / "out")


def test_damaged_bytes_are_one_line(tmp_path: Path) -> None:
    bag = objects_only_bag(tmp_path, "bounded-soccer")
    data = bag / "episode_0000.mcap"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])  # a disk that filled, a copy cut short
    with pytest.raises(BagError, match="damaged bag") as error:
        read_bag(bag)
    assert "\n" not in str(error.value)


def test_unfinished_recordings_are_skipped_with_a_warning(tmp_path: Path, caplog) -> None:
    objects_only_bag(tmp_path, "bounded-soccer", episode=0)
    writer = EpisodeBagWriter(tmp_path, "bounded-soccer", min_free_gib=0.0)
    writer.begin(1, "task")  # the recorder dies here
    with caplog.at_level(logging.WARNING):
        paths = bag_paths([tmp_path])
    assert [p.name for p in paths] == ["episode_0000"]
    assert "unfinished recording" in caplog.text
