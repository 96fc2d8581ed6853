"""The node table: the processes a bringup starts for its arguments, and arguments that make no sense together."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from farl.graph import GraphArgs, bringup_file, graph_nodes, ros_arguments, write_bringup_parameters
from farl_core.errors import ConfigError

CONFIG = Path(__file__).resolve().parents[3] / "config" / "farl.yaml"


@pytest.fixture
def args(tmp_path: Path) -> GraphArgs:
    return GraphArgs(task="disturbed-push", mode="finetune", config=CONFIG, task_policy="ckpt/task",
                     recovery_policy="ckpt/recovery", world_model="ckpt/wm", out=str(tmp_path / "run"), episodes=3)


def test_sim_graph_is_the_world_process_plus_perception_policy_and_shield(args: GraphArgs, tmp_path: Path) -> None:
    nodes = graph_nodes(args)
    assert [n.executable for n in nodes] == ["perception_node", "policy_node", "shield_node", "sim_world_node"]
    world = nodes[-1]
    assert world.name is None and set(world.sections) == {"farl_bridge", "farl_scene"}  # two nodes, one process
    path = write_bringup_parameters(args, nodes)
    assert path == bringup_file(args) and path.parent == tmp_path and not (tmp_path / "run").exists()
    written = yaml.safe_load(path.read_text())
    assert all(section["ros__parameters"]["use_sim_time"] is True for section in written.values())
    assert written["farl_policy"]["ros__parameters"]["mode"] == "finetune"
    assert written["farl_safety"]["ros__parameters"]["updated_policy"] == str(tmp_path / "run" / "policy")
    assert Path(written["farl_perception"]["ros__parameters"]["calibration_file"]).is_file()
    assert ros_arguments(nodes[0], CONFIG, path)[-2:] == ["-r", "__node:=farl_perception"]
    assert "-r" not in ros_arguments(world, CONFIG, path)  # a remap would rename both of its nodes


def test_ground_truth_objects_replace_perception_in_simulation(args: GraphArgs) -> None:
    nodes = graph_nodes(replace(args, camera="ground-truth"))
    assert "perception_node" not in [n.executable for n in nodes]
    assert nodes[-1].sections["farl_scene"]["camera"] == "ground-truth"


def test_record_adds_the_recorder_with_its_bag_folder_beside_the_run(args: GraphArgs, tmp_path: Path) -> None:
    nodes = graph_nodes(replace(args, record=True))
    recorder = next(n for n in nodes if n.executable == "recorder_node")
    assert recorder.sections["farl_recorder"]["out"] == str(tmp_path / "run.bags")
    assert recorder.sections["farl_recorder"]["role"] == "online"


def test_a_real_robot_graph_runs_the_bridge_alone_on_the_wall_clock(args: GraphArgs) -> None:
    nodes = graph_nodes(replace(args, robot="172.16.0.2", camera="realsense"))
    executables = [n.executable for n in nodes]
    assert "sim_world_node" not in executables and "bridge_node" in executables
    assert "realsense2_camera_node" in executables
    bridge = next(n for n in nodes if n.executable == "bridge_node")
    assert bridge.sections["farl_bridge"] == {"robot": "172.16.0.2", "stats_file": ""}
    assert all(not s.get("use_sim_time", False) for n in nodes for s in n.sections.values())


def test_a_teleop_graph_records_the_device_with_no_policy_and_no_shield(args: GraphArgs) -> None:
    teleop = replace(args, mode="teleop", task_policy="", recovery_policy="", world_model="", role="failure",
                     device="joy:/joy")
    nodes = {n.executable: n for n in graph_nodes(teleop)}
    assert "shield_node" not in nodes and "recorder_node" in nodes    # recorded whatever record:= says
    policy = nodes["policy_node"].sections["farl_policy"]
    assert (policy["mode"], policy["role"], policy["teleop_device"]) == ("teleop", "failure", "joy:/joy")
    assert nodes["recorder_node"].sections["farl_recorder"]["role"] == "failure"


@pytest.mark.parametrize(("change", "message"), [
    ({"robot": "172.16.0.2"}, "camera:=sim comes from franky-sim"),
    ({"camera": "realsense"}, "cannot see the simulated scene"),
    ({"mode": "teleop"}, "runs no policy"),
    ({"mode": "teleop", "task_policy": "", "recovery_policy": "", "world_model": "", "device": "keyboard"},
     "teleop_twist_keyboard"),
    ({"mode": "teleop", "task_policy": "", "recovery_policy": "", "world_model": "", "robot": "172.16.0.2",
      "camera": "realsense", "device": "scripted"}, "franky-sim only"),
    ({"mode": "teleop", "task_policy": "", "recovery_policy": "", "world_model": "", "role": "online"},
     "role:=online"),
    ({"task_policy": ""}, "needs task_policy"),
    ({"world_model": ""}, "the shield needs"),
    ({"out": ""}, "out:=DIR"),
    ({"task": "fragile-push"}, "not a Franka task"),
    ({"camera": "usb"}, "camera:=usb"),
    ({"config": Path("nowhere.yaml")}, "no such parameter file"),
])
def test_arguments_that_make_no_sense_together_are_one_clear_error(args: GraphArgs, change: dict,
                                                                   message: str) -> None:
    with pytest.raises(ConfigError, match=message) as error:
        graph_nodes(replace(args, **change))
    assert "\n" not in str(error.value)
