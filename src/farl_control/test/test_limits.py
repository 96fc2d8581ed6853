"""The hard-limit layer on its own: step clip, workspace box, NaN rejection, config validation."""

from __future__ import annotations

import numpy as np
import pytest

from farl_control.config import BridgeConfig, HardLimits
from farl_control.limits import limit_command
from farl_core.config import from_mapping
from farl_core.errors import ConfigError

LIMITS = HardLimits()
CENTRE = np.array([0.5, 0.0, 0.2])


def test_small_delta_passes_unchanged() -> None:
    cmd = limit_command(LIMITS, CENTRE, np.array([0.01, -0.01, 0.005]), yaw=0.05)
    np.testing.assert_allclose(cmd.target, CENTRE + [0.01, -0.01, 0.005])
    assert not cmd.clipped and not cmd.rejected and cmd.yaw == 0.05


def test_large_step_is_scaled_to_max_translation_keeping_direction() -> None:
    delta = np.array([0.3, 0.4, 0.0])
    cmd = limit_command(LIMITS, CENTRE, delta)
    step = cmd.target - CENTRE
    assert np.linalg.norm(step) == pytest.approx(LIMITS.max_translation)
    np.testing.assert_allclose(step / np.linalg.norm(step), delta / np.linalg.norm(delta))
    assert cmd.clipped


def test_target_is_clipped_into_workspace_box() -> None:
    edge = np.array([LIMITS.workspace_max[0] - 0.005, 0.0, LIMITS.workspace_min[2] + 0.001])
    cmd = limit_command(LIMITS, edge, np.array([0.02, 0.0, -0.02]))
    assert cmd.target[0] == pytest.approx(LIMITS.workspace_max[0])
    assert cmd.target[2] == pytest.approx(LIMITS.workspace_min[2])
    assert cmd.clipped


def test_return_from_outside_the_box_is_step_capped_too() -> None:
    above = np.array([0.5, 0.0, LIMITS.workspace_max[2] + 0.2])
    cmd = limit_command(LIMITS, above, np.zeros(3))
    assert np.linalg.norm(cmd.target - above) == pytest.approx(LIMITS.max_translation)
    assert cmd.target[2] < above[2] and cmd.clipped


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_command_is_rejected_and_holds(bad: float) -> None:
    cmd = limit_command(LIMITS, CENTRE, np.array([0.01, bad, 0.0]))
    assert cmd.rejected and "non-finite" in cmd.reason
    np.testing.assert_array_equal(cmd.target, CENTRE)
    assert limit_command(LIMITS, CENTRE, np.zeros(3), yaw=bad).rejected


def test_yaw_is_clipped() -> None:
    cmd = limit_command(LIMITS, CENTRE, np.zeros(3), yaw=-1.0)
    assert cmd.yaw == -LIMITS.max_yaw and cmd.clipped


def test_inverted_workspace_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"workspace_min.y \(0.5\) must be below workspace_max.y"):
        from_mapping(BridgeConfig, {"limits": {"workspace_min": [0.3, 0.5, 0.0]}}, where="f: farl_bridge")


def test_dynamics_factor_above_one_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"farl_bridge.limits.dynamics_factor: expected a value > 0.0 and <= 1.0"):
        from_mapping(BridgeConfig, {"limits": {"dynamics_factor": 1.5}}, where="f: farl_bridge")
