"""franky-sim in lock-step (lockstep_server.py): two sessions of the same commands give the same states, to the bit.

Each session connects the real franky client to its own franky-sim, resets the arm (homing, opening the gripper),
then runs ticks of seeded random end-effector and gripper commands at 5 Hz the way the robot loop does: read the
state, command, `advance_to` the next tick.  Without lock-step the same script differs from the first tick on
(the simulation runs on while the script thinks); a jittery pause between the calls must change nothing.
"""

from __future__ import annotations

import logging
import random
import re
import time

import numpy as np
import pytest

from farl_control.bridge import BridgeStatus, FrankaBridge
from farl_control.config import BridgeConfig
from farl_core.errors import FarlError

TICKS = 12
PERIOD = 0.2


def _session(seed: int, jitter: random.Random) -> tuple[np.ndarray, FrankaBridge]:
    rows = []
    rng = np.random.default_rng(seed)
    bridge = FrankaBridge.connect(BridgeConfig(robot="sim"), realtime=False, lockstep=True)
    try:
        bridge.reset()
        for _ in range(TICKS):
            tick = bridge.robot_time()
            state = bridge.state()
            rows.append([tick, *state.ee_position, *state.joints, *state.joint_velocities, state.gripper_width])
            time.sleep(jitter.uniform(0.0, 0.03))  # the policy thinking: the simulation must wait, not run on
            bridge.command(rng.uniform(-1.0, 1.0, 3) * 0.02, gripper=float(rng.uniform(-1.0, 1.0)))
            bridge.advance_to(tick + PERIOD)
        bridge.idle()
        rows.append([bridge.robot_time(), *bridge.state().ee_position, *np.zeros(15)])
    except BaseException:
        bridge.close()
        raise
    return np.asarray(rows), bridge


def test_two_lockstep_sessions_are_identical() -> None:
    first, bridge = _session(0, random.Random(1))
    try:
        assert bridge.server is not None
        clock = first[:TICKS, 0]
        assert np.allclose(np.diff(clock), PERIOD)  # every tick exactly one control period of simulated time
        assert np.ptp(first[:TICKS, 1:4], axis=0).max() > 0.01  # the arm did move
    finally:
        bridge.close()
    second, bridge = _session(0, random.Random(2))
    bridge.close()
    np.testing.assert_array_equal(first, second)


def test_lockstep_calls_need_a_lockstep_sim() -> None:
    bridge = FrankaBridge.connect(BridgeConfig(robot="sim"), realtime=False)
    try:
        assert not bridge.lockstep
        bridge.idle()  # nothing to do without lock-step: the arm holds its target
        t = bridge.robot_time()
        time.sleep(0.05)
        assert bridge.robot_time() > t  # the ordinary franky-sim runs on by itself
        with pytest.raises(FarlError, match="lockstep=True"):
            bridge.advance_to(t + PERIOD)
    finally:
        bridge.close()


def test_the_watchdog_stops_the_arm_at_a_tick_when_commands_stop() -> None:
    bridge = FrankaBridge.connect(BridgeConfig(robot="sim"), realtime=False, lockstep=True)
    try:
        bridge.reset()
        start = bridge.robot_time()
        bridge.command(np.array([0.02, 0.0, 0.0]))
        ticks = 0
        while bridge.status is BridgeStatus.READY and ticks < 10:  # ticks with no command: the policy went silent
            ticks += 1
            bridge.advance_to(start + ticks * PERIOD)
        assert bridge.status is BridgeStatus.STOPPED
        assert "watchdog" in bridge.state().error
        # checked at the tick that starts after more than watchdog_timeout of silence, not by the wall clock
        assert ticks == int(bridge.watchdog_timeout / PERIOD + 1e-9) + 2
    finally:
        bridge.close()


def test_a_control_loop_starved_past_libfrankas_timeout_keeps_the_connection(caplog: pytest.LogCaptureFixture) -> None:
    """A tick that thinks longer than libfranka's 1 s receive timeout (a CPU busy with other work) costs the run
    its exactness (forced steps, counted), not the connection: without them libfranka drops the motion.  The
    warning names the motion and its last events, so that an unexpected wait can be traced."""
    caplog.set_level(logging.WARNING, logger="farl_control.lockstep_server")
    bridge = FrankaBridge.connect(BridgeConfig(robot="sim"), realtime=False, lockstep=True)
    try:
        assert bridge.server is not None
        bridge.reset()
        start = bridge.robot_time()
        bridge.command(np.array([0.02, 0.0, 0.0]))
        bridge.advance_to(start + PERIOD)
        bridge.command(np.array([0.02, 0.0, 0.0]))
        motions = bridge.server.motions_started
        time.sleep(1.5)  # held at the tick with the motion running
        assert bridge.robot.is_in_control and not bridge.robot.has_errors
        health = bridge.server.health()
        forced = re.search(r"(\d+) steps forced", health)
        assert forced is not None and int(forced.group(1)) >= 1
        assert "for the control loop (step" in health  # what lock-step waits for, named in a lost connection's error
        warning = next(r.getMessage() for r in caplog.records if "stepping on" in r.getMessage())
        trail = re.search(r"motion (\d+), last events: (.*)", warning)
        assert trail is not None, warning
        motion = trail.group(1)  # the running motion: started, its opening state read by libfranka, then answered
        assert re.search(rf"start motion {motion} @(\d+); opening state @\1; opening state read @\d+; first answer \d+",
                         trail.group(2)), warning
        bridge.advance_to(start + 2 * PERIOD)  # the same motion runs on, ticks resume
        assert bridge.server.motions_started == motions and bridge.robot_time() == pytest.approx(start + 2 * PERIOD)
    finally:
        bridge.close()


def test_a_state_libfranka_does_not_answer_is_sent_again_without_a_step(caplog: pytest.LogCaptureFixture) -> None:
    """libfranka once read a new motion's second state and waited for a newer one without answering (the main
    command, one run in about eight).  Lock-step then sends the unchanged state under the next id instead of
    stepping: libfranka answers that one, the connection holds and the simulation's clock has not moved."""
    caplog.set_level(logging.WARNING, logger="farl_control.lockstep_server")
    bridge = FrankaBridge.connect(BridgeConfig(robot="sim"), realtime=False, lockstep=True)
    try:
        assert bridge.server is not None
        bridge.reset()
        robot_server = bridge.server._lockstep_server.robot_server
        handle, lost = robot_server._handle_udp_command, []

        def lose_one_answer(command: bytes) -> None:  # as if libfranka had never answered that state
            if not lost:
                lost.append(command)
                return
            handle(command)

        start = bridge.robot_time()
        bridge.command(np.array([0.02, 0.0, 0.0]))
        robot_server._handle_udp_command = lose_one_answer  # type: ignore[method-assign]
        bridge.advance_to(start + PERIOD)
        assert lost and bridge.robot.is_in_control and not bridge.robot.has_errors
        assert bridge.robot_time() == pytest.approx(start + PERIOD)
        health = bridge.server.health()
        assert "0 steps forced, 1 states resent" in health, health
        assert any("has not answered state" in r.getMessage() and "no step" in r.getMessage() for r in caplog.records)
        bridge.command(np.array([0.02, 0.0, 0.0]))
        bridge.advance_to(start + 2 * PERIOD)  # the motion runs on
        assert bridge.robot_time() == pytest.approx(start + 2 * PERIOD) and not bridge.robot.has_errors
    finally:
        bridge.close()
