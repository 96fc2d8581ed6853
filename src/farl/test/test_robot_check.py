"""`farl robot check` against franky-sim, and its one-line error when no robot answers."""

from __future__ import annotations

import subprocess
import sys

import pytest

from farl.robot_check import CHECK_STEP, robot_check
from farl_control.bridge import RobotError
from farl_control.config import BridgeConfig, HardLimits

# Under the full suite's load franky-sim's arm sometimes ends a 1-2 cm Cartesian step far from its
# target: CI measured -88 cm once, a clean-clone run -15 cm once (the limits test below), 65 local
# runs in isolation and under load never did, and logging every Cartesian and far joint target in
# suite runs showed no bad command reaching the simulator.  Reruns keep that simulator excursion from blocking CI; a
# real regression fails every attempt.  The check's own lines are in the failure message.
FRANKY_SIM_EXCURSION = pytest.mark.flaky(reruns=2)


@FRANKY_SIM_EXCURSION
def test_robot_check_moves_and_returns_home() -> None:
    lines: list[str] = []
    result = robot_check(BridgeConfig(robot="sim"), say=lines.append)
    assert result["dz_up"] == pytest.approx(CHECK_STEP, abs=0.002), lines
    assert result["home_error"] < 0.003, lines
    assert lines[0].startswith("connected to franky-sim on 127.") and "status ready" in lines[1]
    assert lines[-1] == "check passed"


@FRANKY_SIM_EXCURSION
def test_a_step_the_limits_cut_short_fails_the_check() -> None:
    """A workspace box whose ceiling is 1 cm above home lets only half the step through."""
    home_z = 0.5214  # the FR3 home pose's EE height under franky-sim
    limits = HardLimits(workspace_max=(0.70, 0.30, home_z + 0.01))
    with pytest.raises(RobotError, match=r"robot check failed: a 2 cm step up measured (0\.9\d|1\.0\d) cm"):
        robot_check(BridgeConfig(robot="sim", limits=limits), say=lambda line: None)


def test_no_robot_at_the_address_is_a_one_line_error() -> None:
    proc = subprocess.run([sys.executable, "-m", "farl.cli", "robot", "check", "--robot", "127.0.0.254"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "cannot connect to a Franka at 127.0.0.254" in proc.stderr
