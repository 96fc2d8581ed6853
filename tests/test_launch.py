"""bringup.launch.py builds a launch description (needs ROS 2's launch_ros; skipped without it)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

LAUNCH = Path(__file__).resolve().parent.parent / "launch" / "bringup.launch.py"


def test_bringup_generates_description() -> None:
    pytest.importorskip("launch_ros")
    spec = importlib.util.spec_from_file_location("bringup", LAUNCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    arguments = {a.name for a in description.get_launch_arguments()}
    assert {"config", "robot"} <= arguments
