"""`farl robot check`: connect to a Panda (or franky-sim), print its state, move 2 cm and back, reset.

The first thing to run on a new robot or machine: it exercises the whole bridge (franky client,
hard limits, watchdog, gripper, joint reset) with a motion small enough to be safe anywhere in
the default workspace box.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from farl_control.bridge import FrankaBridge, RobotError, RobotStateSample
from farl_control.config import BridgeConfig

CHECK_STEP = 0.02
"""m: the check's up-and-back motion."""

STEP_TOLERANCE = 0.002
"""m: how far the measured 2 cm step may be off before the check fails."""

HOME_TOLERANCE = 0.003
"""m: how far the second reset may land from the first before the check fails."""

MOVE_TIMEOUT_S = 30.0
MOVE_ATTEMPTS = 3
"""franky's planner can abort a motion under CPU load (Ruckig -101, seen in CI); the check re-commands."""


def describe(state: RobotStateSample) -> str:
    ee = ", ".join(f"{v:.4f}" for v in state.ee_position)
    joints = ", ".join(f"{v:.3f}" for v in state.joints)
    return (f"ee [{ee}] m  gripper {state.gripper_width * 1000:.1f} mm  joints [{joints}] rad  "
            f"status {state.status.value}  errors {'yes' if state.has_errors else 'no'}")


def robot_check(config: BridgeConfig, say: Callable[[str], None] = print) -> dict[str, float]:
    """Run the check; returns the measured displacements (m) for scripts and tests.

    Raises RobotError when the arm did not do what it was told (the step or the return home off by
    more than STEP_TOLERANCE / HOME_TOLERANCE): a check that only prints numbers passes a robot
    whose frames, TCP or limits are wrong.
    """
    # One command per motion, waited for: the watchdog must not cut the check's own moves short.
    config = replace(config, limits=replace(config.limits, watchdog_periods=max(config.limits.watchdog_periods, 1e4)))
    with FrankaBridge.connect(config) as bridge:
        say(f"connected to {'franky-sim on ' + bridge.server.hostname if bridge.server else config.robot}")
        say(f"state: {describe(bridge.state())}")
        home = bridge.reset()
        say(f"reset: {describe(home)}")
        up = _move_to(bridge, home.ee_position + [0.0, 0.0, CHECK_STEP]) - home.ee_position
        say(f"moved +{CHECK_STEP * 100:.0f} cm in z: measured dz {up[2] * 100:.2f} cm")
        _move_to(bridge, home.ee_position)
        back = bridge.reset()
        error = float(np.linalg.norm(back.ee_position - home.ee_position))
        say(f"reset again: home within {error * 1000:.1f} mm")
    if abs(up[2] - CHECK_STEP) > STEP_TOLERANCE or error > HOME_TOLERANCE:
        raise RobotError(f"robot check failed: a {CHECK_STEP * 100:.0f} cm step up measured {up[2] * 100:.2f} cm "
                         f"and the reset came back within {error * 1000:.1f} mm (tolerances "
                         f"{STEP_TOLERANCE * 1000:.0f} / {HOME_TOLERANCE * 1000:.0f} mm); check the robot's TCP, "
                         "the workspace limits and for collisions before running a policy")
    say("check passed")
    return {"dz_up": float(up[2]), "home_error": error}


def _move_to(bridge: FrankaBridge, target: np.ndarray, attempts: int = MOVE_ATTEMPTS) -> np.ndarray:
    """Command the EE to `target` and wait; a motion franky aborted is re-commanded from where it stopped."""
    for _ in range(attempts):
        bridge.command(target - bridge.state().ee_position)
        if bridge.wait_for_motion(timeout=MOVE_TIMEOUT_S):
            break
    return bridge.state().ee_position
