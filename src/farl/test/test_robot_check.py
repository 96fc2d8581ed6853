"""`farl robot check` against franky-sim, and its one-line error when no robot answers."""

from __future__ import annotations

import subprocess
import sys

import pytest

from farl.robot_check import CHECK_STEP, robot_check
from farl_control.config import BridgeConfig


def test_robot_check_moves_and_returns_home() -> None:
    lines: list[str] = []
    result = robot_check(BridgeConfig(robot="sim"), say=lines.append)
    assert result["dz_up"] == pytest.approx(CHECK_STEP, abs=0.002)
    assert result["home_error"] < 0.003
    assert lines[0].startswith("connected to franky-sim on 127.") and "status ready" in lines[1]


def test_no_robot_at_the_address_is_a_one_line_error() -> None:
    proc = subprocess.run([sys.executable, "-m", "farl.cli", "robot", "check", "--robot", "127.0.0.254"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "cannot connect to a Franka at 127.0.0.254" in proc.stderr
