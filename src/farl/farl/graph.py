"""The ROS graph's node table: which processes a bringup starts, with which parameters, from one set of arguments.

DESIGN.md: one table of nodes in Python is the single source for `bringup.launch.py`, for the tests
that start the graph (each node its own process, as `ros2 launch` would), and for `farl bringup`
(every node of the table in one process, on one executor, for machines without `ros2 launch`).

Every process reads the shipped parameter file (`config:=`, default config/farl.yaml) and, on top,
the bringup's own parameter file: the values the launch arguments decide (task, mode, checkpoints,
robot, use_sim_time, ...), per node section, written next to the run directory as
`.<out>.bringup.yaml` so what the graph ran with can be read afterwards.  Per-node sections matter:
the simulated world is two nodes in one process (farl_bridge and farl_scene), and a command-line
`-p` would reach both.

With `robot:=sim` the bridge publishes /clock from franky-sim and every node runs with
`use_sim_time` (`sim_time:=false` keeps the wall clock, for latency measurements).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from farl_core.atomic_files import write_atomic
from farl_core.errors import ConfigError
from farl_core.franka_tasks import FRANKA_TASKS

ROBOT_HELP = "sim (embedded franky-sim) or the Panda's FCI IP"
CAMERAS = ("sim", "ground-truth", "realsense", "topics")
MODES = ("deploy", "finetune", "teleop")


@dataclass(frozen=True)
class GraphArgs:
    """The launch arguments (bringup.launch.py, `farl bringup`)."""

    robot: str = "sim"
    camera: str = "sim"              # sim: the scene node's D435; ground-truth: sim states, no perception;
    #                                  realsense: start realsense-ros; topics: a driver already publishes
    task: str = "fragile-push-wall"
    mode: str = "deploy"
    config: Path = Path("config/farl.yaml")
    task_policy: str = ""
    recovery_policy: str = ""
    world_model: str = ""
    out: str = ""
    episodes: int = 10
    seed: int = 0
    record: bool = False
    role: str = "task"               # mode teleop: the demonstrations' role (the recorder labels the bags with it)
    device: str = "twist:/cmd_vel"   # mode teleop: the policy node's teleop_device
    sim_time: bool = True            # with robot:=sim: every node on franky-sim's /clock
    bridge_stats: str = ""           # the bridge writes its command-latency figures here on shutdown (benchmarks)

    def check(self) -> None:
        """Arguments that make no sense together: one line naming the problem and the fix."""
        if self.task not in FRANKA_TASKS:
            raise ConfigError(f"task:={self.task}: not a Franka task; choose one of {', '.join(FRANKA_TASKS)}")
        if self.mode not in MODES:
            raise ConfigError(f"mode:={self.mode}: choose one of {', '.join(MODES)}")
        if self.camera not in CAMERAS:
            raise ConfigError(f"camera:={self.camera}: choose one of {', '.join(CAMERAS)}")
        if self.mode == "teleop":
            self._check_teleop()
        if self.camera in ("sim", "ground-truth") and self.robot != "sim":
            raise ConfigError(f"camera:={self.camera} comes from franky-sim's scene: with a real robot "
                              f"(robot:={self.robot}) use camera:=realsense or camera:=topics")
        if self.camera not in ("sim", "ground-truth") and self.robot == "sim":
            raise ConfigError(f"camera:={self.camera} with robot:=sim: a real camera cannot see the simulated scene; "
                              "use camera:=sim (or ground-truth)")
        if not self.task_policy and self.mode != "teleop":
            raise ConfigError(f"mode:={self.mode} needs task_policy:=DIR (a `farl train` output directory)")
        if bool(self.recovery_policy) != bool(self.world_model):
            raise ConfigError("the shield needs recovery_policy:=DIR and world_model:=DIR (or neither: unshielded)")
        if not self.out:
            raise ConfigError("out:=DIR is needed: the run directory (episodes.csv, checkpoints; rerun to resume)")
        if self.episodes < 1:
            raise ConfigError(f"episodes:={self.episodes}: must be at least 1")
        if not self.config.is_file():
            raise ConfigError(f"config:={self.config}: no such parameter file")

    def _check_teleop(self) -> None:
        from farl_teleop.devices import device_kind

        if self.role not in ("task", "recovery", "failure"):
            raise ConfigError(f"role:={self.role}: choose one of task, recovery, failure")
        kind, _ = device_kind(self.device)
        if kind == "keyboard":
            raise ConfigError("device:=keyboard: a launched node has no terminal; run teleop_twist_keyboard in "
                              "yours and pass device:=twist:/cmd_vel (or use `farl teleop`)")
        if kind == "scripted" and self.robot != "sim":
            raise ConfigError("device:=scripted drives franky-sim only: on a robot use a twist:, joy: or spacemouse "
                              "device")
        if self.task_policy or self.recovery_policy or self.world_model:
            raise ConfigError("mode:=teleop runs no policy: leave task_policy, recovery_policy and world_model unset")

    @property
    def recording(self) -> bool:
        """Teleop sessions are recorded whatever `record` says: the bags are what they are for."""
        return self.record or self.mode == "teleop"

    @property
    def uses_sim_time(self) -> bool:
        return self.robot == "sim" and self.sim_time


@dataclass(frozen=True)
class GraphNode:
    """One process of the graph: what `ros2 launch` starts (launch_ros Node), and how to build it in-process."""

    package: str
    executable: str
    module: str                      # the module whose process() builds it (farl bringup)
    name: str | None                 # the node name, None for a process of several nodes (its own names)
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)  # node name -> the bringup's parameters


def graph_nodes(args: GraphArgs) -> list[GraphNode]:
    """The processes of the graph for `args` (checked first)."""
    args.check()
    out = Path(args.out).resolve()
    common = {"use_sim_time": args.uses_sim_time}
    checkpoints = {"task_policy": args.task_policy, "recovery_policy": args.recovery_policy,
                   "world_model": args.world_model}
    config = str(args.config.resolve())
    nodes = [] if args.camera == "ground-truth" else [
        GraphNode("farl_perception", "perception_node", "farl_perception.perception_node", "farl_perception",
                  {"farl_perception": {**common, "task": args.task}})]
    nodes += [
        GraphNode("farl", "policy_node", "farl.policy_node", "farl_policy",
                  {"farl_policy": {**common, **checkpoints, "task": args.task, "mode": args.mode,
                                   "num_episodes": args.episodes, "out": str(out), "seed": args.seed,
                                   "robot": args.robot, "camera": args.camera, "config_file": config,
                                   "role": args.role, "teleop_device": args.device}})]
    if args.mode != "teleop":  # a teleop device's action goes to the bridge's hard limits only
        nodes.append(GraphNode("farl_safety", "shield_node", "farl_safety.shield_node", "farl_safety",
                               {"farl_safety": {**common, **checkpoints, "task": args.task, "config_file": config,
                                                "updated_policy": str(out / "policy")}}))
    if args.robot == "sim":
        nodes.append(GraphNode("farl_sim", "sim_world_node", "farl_sim.franka_scenes.sim_world_node", None,
                               {"farl_bridge": {**common, "robot": "sim", "stats_file": args.bridge_stats},
                                "farl_scene": {**common, "task": args.task, "seed": args.seed, "camera": args.camera}}))
    else:
        nodes.append(GraphNode("farl_control", "bridge_node", "farl_control.bridge_node", "farl_bridge",
                               {"farl_bridge": {"robot": args.robot, "stats_file": args.bridge_stats}}))
    if args.recording:  # online sessions are data too: one bag per episode next to the run directory
        role = args.role if args.mode == "teleop" else "online"
        # a recovery demo on franky-sim begins with the scripted approach: the bag starts at the handover
        record_from = "handover" if role == "recovery" and args.robot == "sim" else "start"
        nodes.append(GraphNode("farl_teleop", "recorder_node", "farl_teleop.recorder_node", "farl_recorder",
                               {"farl_recorder": {**common, "out": str(bag_folder(args)), "task": args.task,
                                                  "role": role, "camera": args.camera != "ground-truth",
                                                  "record_from": record_from}}))
    if args.camera == "realsense":  # realsense-ros, D435 colour with depth aligned to it (topics under /camera/camera)
        nodes.append(GraphNode("realsense2_camera", "realsense2_camera_node", "", "camera",
                               {"/camera/camera": {"align_depth.enable": True, "rgb_camera.color_profile": "640x480x30",
                                                   "depth_module.depth_profile": "640x480x30"}}))
    return nodes


def bag_folder(args: GraphArgs) -> Path:
    """Where `record:=true` puts the episode bags: next to the run directory (`<out>.bags`)."""
    out = Path(args.out).resolve()
    return out.parent / f"{out.name}.bags"


def bringup_file(args: GraphArgs) -> Path:
    """Where the bringup's own parameter file goes: next to the run directory, never inside it."""
    out = Path(args.out).resolve()
    return out.parent / f".{out.name}.bringup.yaml"


def write_bringup_parameters(args: GraphArgs, nodes: list[GraphNode]) -> Path:
    """The bringup's parameter file (module docstring), with the simulated camera's pose for perception."""
    sections: dict[str, Any] = {}
    for node in nodes:
        for name, values in node.sections.items():
            sections[name] = {"ros__parameters": dict(values)}
    path = bringup_file(args)
    if args.camera == "sim":
        calibration = path.with_suffix(".camera.json")
        _write_sim_calibration(calibration)
        sections["farl_perception"]["ros__parameters"]["calibration_file"] = str(calibration)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "# written by the FARL bringup (farl/graph.py) from its arguments; read after the shipped config\n"
    text += yaml.safe_dump(sections, sort_keys=False)
    write_atomic(path, lambda tmp: tmp.write_text(text))
    return path


def _write_sim_calibration(path: Path) -> None:
    """The simulated D435's exact pose as perception's calibration file (the scene knows where it put it)."""
    from farl_perception.calibration import ground_truth_calibration, save_calibration
    from farl_sim.franka_scenes.camera import DEFAULT_D435

    result = ground_truth_calibration(DEFAULT_D435.extrinsics.matrix, DEFAULT_D435.intrinsics)
    save_calibration(result, path, overwrite=True)


def ros_arguments(node: GraphNode, config: Path, bringup: Path) -> list[str]:
    """The `--ros-args` a process of the table is started with (what launch_ros passes for the same Node)."""
    arguments = ["--params-file", str(config.resolve()), "--params-file", str(bringup)]
    if node.name is not None:
        arguments += ["-r", f"__node:={node.name}"]
    return arguments


def build_in_process(nodes: list[GraphNode]) -> list[Any]:
    """Each process's `Process` (farl_core.run_node) from its module, to spin together (farl bringup)."""
    missing = [n.package for n in nodes if not n.module]
    if missing:
        raise ConfigError(f"{', '.join(missing)} cannot run in-process: start it on its own (ros2 launch)")
    return [importlib.import_module(n.module).process() for n in nodes]
