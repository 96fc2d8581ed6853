"""Bring up the FARL stack on a robot: `ros2 launch farl bringup.launch.py [config:=...] [robot:=...]`.

Every node reads its section of one parameter file (default: share/farl/config/farl.yaml),
the same file the ROS-free runner validates with `farl config check`.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, LogInfo
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription

# (package, executable, node name). A component lands here when its *_node.py exists.
NODES: list[tuple[str, str, str]] = [
    ("farl_perception", "perception_node", "farl_perception"),
]


def generate_launch_description() -> LaunchDescription:
    default_config = os.path.join(get_package_share_directory("farl"), "config", "farl.yaml")
    config = LaunchConfiguration("config")
    robot = LaunchConfiguration("robot")
    actions = [
        DeclareLaunchArgument("config", default_value=default_config,
                              description="FARL parameter file"),
        DeclareLaunchArgument("robot", default_value="sim",
                              description="'sim' for embedded franky-sim, or the Panda's FCI IP"),
        LogInfo(msg=["FARL bringup: nodes ", str([name for _, _, name in NODES]),
                     " with config ", config, ", robot ", robot]),
    ]
    actions += [
        Node(package=package, executable=executable, name=name, output="screen",
             parameters=[config, {"robot": robot}] if name == "farl_bridge" else [config])
        for package, executable, name in NODES
    ]
    return LaunchDescription(actions)
