"""bringup.launch.py builds a launch description from the node table (needs ROS 2's launch_ros; skipped without it)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

LAUNCH = Path(__file__).resolve().parent.parent / "launch" / "bringup.launch.py"


def test_bringup_declares_the_graph_arguments() -> None:
    pytest.importorskip("launch_ros")
    spec = importlib.util.spec_from_file_location("bringup", LAUNCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    arguments = {a.name for a in description.get_launch_arguments()}
    assert {"config", "robot", "camera", "task", "mode", "task_policy", "recovery_policy", "world_model", "out",
            "episodes", "record", "sim_time"} <= arguments


def test_launch_file_arguments_are_the_graph_arguments() -> None:
    """Without launch_ros: the launch file's argument table names every field of farl.graph.GraphArgs it sets."""
    from farl.graph import GraphArgs

    text = LAUNCH.read_text()
    for name in GraphArgs.__dataclass_fields__:
        if name not in ("config", "bridge_stats"):
            assert f'"{name}": (' in text, f"launch argument {name} missing"
