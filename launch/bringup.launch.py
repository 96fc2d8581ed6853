"""Bring up the FARL graph: `ros2 launch farl bringup.launch.py robot:=sim|IP camera:=sim|realsense|topics task:=...
mode:=deploy|finetune task_policy:=DIR [recovery_policy:=DIR world_model:=DIR] out:=DIR [episodes:=N]`, or
`mode:=teleop role:=task|recovery|failure device:=twist:/cmd_vel out:=DIR` (demonstrations, recorded).

The processes come from farl.graph's node table (the tests and `farl bringup` start the same
ones); every process reads the parameter file `config:=` (default share/farl/config/farl.yaml)
and the bringup's own file of the values these arguments decide.  Arguments that make no sense
together stop the launch with one line saying why.
"""

import os
from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, LogInfo, OpaqueFunction, Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from farl.graph import GraphArgs, graph_nodes, write_bringup_parameters
from farl_core.errors import FarlError
from launch import LaunchDescription

ARGUMENTS = {  # name: (default, description)
    "robot": ("sim", "sim (embedded franky-sim) or the Panda's FCI IP"),
    "camera": ("sim", "sim (the scene's D435), realsense (start realsense-ros), topics (a driver already runs)"),
    "task": ("fragile-push-wall", "fragile-push-wall | disturbed-push | bounded-soccer"),
    "mode": ("deploy", "deploy | finetune | teleop (a teleop device in the policy's place, always recorded)"),
    "task_policy": ("", "task-policy checkpoint directory (farl train)"),
    "recovery_policy": ("", "recovery-policy checkpoint directory; with world_model, the shield"),
    "world_model": ("", "world-model checkpoint directory"),
    "out": ("", "run directory: episodes.csv, checkpoints (rerun to resume)"),
    "episodes": ("10", "episodes to run"),
    "seed": ("0", "seed of the learner and of the simulated human"),
    "record": ("false", "record every /farl/* topic, one rosbag (MCAP) per episode, into <out>.bags"),
    "role": ("task", "mode teleop: the demonstrations' role, task | recovery | failure"),
    "device": ("twist:/cmd_vel", "mode teleop: twist:TOPIC | joy:TOPIC | spacemouse | scripted"),
    "sim_time": ("true", "with robot:=sim, run every node on franky-sim's /clock"),
}


def _graph(context, *args, **kwargs):
    del args, kwargs
    value = {name: LaunchConfiguration(name).perform(context) for name in (*ARGUMENTS, "config")}
    try:
        graph = GraphArgs(robot=value["robot"], camera=value["camera"], task=value["task"], mode=value["mode"],
                          config=Path(value["config"]), task_policy=value["task_policy"],
                          recovery_policy=value["recovery_policy"], world_model=value["world_model"],
                          out=value["out"], episodes=int(value["episodes"]), seed=int(value["seed"]),
                          record=value["record"].lower() == "true", sim_time=value["sim_time"].lower() == "true",
                          role=value["role"], device=value["device"])
        nodes = graph_nodes(graph)
        bringup = write_bringup_parameters(graph, nodes)
    except (FarlError, ValueError) as exc:
        return [LogInfo(msg=f"farl bringup: error: {exc}"), Shutdown(reason=str(exc))]
    actions = [LogInfo(msg=f"FARL bringup: {[n.executable for n in nodes]}; parameters {value['config']} + {bringup}")]
    for node in nodes:
        extra = {"name": node.name} if node.name is not None else {}
        if node.package == "realsense2_camera":
            extra["namespace"] = "camera"
        actions.append(Node(package=node.package, executable=node.executable, output="screen",
                            parameters=[value["config"], str(bringup)], **extra))
    return actions


def generate_launch_description() -> LaunchDescription:
    default_config = os.path.join(get_package_share_directory("farl"), "config", "farl.yaml")
    declared = [DeclareLaunchArgument("config", default_value=default_config, description="FARL parameter file")]
    declared += [DeclareLaunchArgument(name, default_value=default, description=text)
                 for name, (default, text) in ARGUMENTS.items()]
    return LaunchDescription([*declared, OpaqueFunction(function=_graph)])
