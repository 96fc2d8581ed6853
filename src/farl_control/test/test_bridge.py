"""FrankaBridge driving the real franky client against franky-sim on loopback.

One franky-sim server (a MuJoCo FR3 speaking the libfranka protocol) serves the whole module;
each test builds its own bridge over the shared client with the limits it needs.  franky-sim
never raises a robot error, so the recovery tests wrap the real client in FaultInjectingRobot,
which fails chosen calls the way libfranka does (a ControlException, `has_errors` set).
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import franky
import numpy as np
import pytest

from farl_control.bridge import BridgeStatus, ConnectionLost, FrankaBridge, RobotError
from farl_control.config import BridgeConfig, HardLimits, RecoveryConfig
from farl_control.embedded_sim import SWITCH_INTERVAL_S, EmbeddedFrankaSim
from farl_control.fault_injection import FaultInjectingRobot
from farl_control.scheduling import keep_scheduling, ordinary_scheduling

SLOW_WATCHDOG = HardLimits(watchdog_periods=1000.0)  # for tests that wait for a motion to finish


@pytest.fixture(scope="module")
def client() -> Iterator[tuple[Any, Any]]:
    with EmbeddedFrankaSim(realtime=False) as server:  # as fast as the CPU allows: robot time drives everything
        with keep_scheduling():  # the worker's main thread must not end up at libfranka's FIFO (scheduling.py)
            robot = franky.Robot(server.hostname, realtime_config=franky.RealtimeConfig.Ignore)
            gripper = franky.Gripper(server.hostname)
        yield robot, gripper


@pytest.fixture
def make_bridge(client: tuple[Any, Any]) -> Iterator[Callable[..., FrankaBridge]]:
    """Bridges over the shared client, reset home first; all closed after the test."""
    made: list[FrankaBridge] = []

    def make(robot: Any = None, **config: Any) -> FrankaBridge:
        bridge = FrankaBridge(robot or client[0], client[1], BridgeConfig(**config))
        made.append(bridge)
        bridge.reset()
        return bridge

    yield make
    for bridge in made:
        bridge.close()


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def settle(bridge: FrankaBridge) -> np.ndarray:
    """Wait for the running motion to end; the EE position then."""
    bridge.robot.join_motion(timeout=20.0)
    return bridge.state().ee_position


def test_a_delta_moves_the_ee_by_that_amount(make_bridge: Callable[..., FrankaBridge]) -> None:
    bridge = make_bridge(limits=SLOW_WATCHDOG)
    start = bridge.state().ee_position
    delta = np.array([0.015, -0.01, -0.02])  # 2.7 cm: inside the 3 cm cap
    command = bridge.command(delta)
    assert not command.clipped and not command.rejected
    np.testing.assert_allclose(settle(bridge) - start, delta, atol=0.002)


def test_a_large_delta_is_capped_per_command(make_bridge: Callable[..., FrankaBridge]) -> None:
    bridge = make_bridge(limits=SLOW_WATCHDOG)
    start = bridge.state().ee_position
    assert bridge.command(np.array([0.0, 0.2, 0.0])).clipped
    moved = settle(bridge) - start
    assert moved[1] == pytest.approx(SLOW_WATCHDOG.max_translation, abs=0.002)


def test_a_command_outside_the_workspace_box_is_clipped(make_bridge: Callable[..., FrankaBridge]) -> None:
    home = BridgeConfig().reset  # the box edge sits 1 cm in front of the home EE position
    bridge = make_bridge(limits=replace(SLOW_WATCHDOG, workspace_max=(0.565, 0.30, 0.55)), reset=home)
    start = bridge.state().ee_position
    command = bridge.command(np.array([0.03, 0.0, 0.0]))
    assert command.clipped and command.target[0] == pytest.approx(0.565)
    end = settle(bridge)
    assert end[0] == pytest.approx(0.565, abs=0.002) and end[0] < start[0] + 0.03 - 0.015


def test_a_nan_command_is_rejected_and_the_arm_holds(make_bridge: Callable[..., FrankaBridge]) -> None:
    bridge = make_bridge(limits=replace(SLOW_WATCHDOG, max_translation=0.10, dynamics_factor=0.05))
    start = bridge.state().ee_position
    bridge.command(np.array([0.10, 0.0, 0.0]))
    assert wait_until(lambda: bridge.state().ee_position[0] > start[0] + 0.005)
    rejected = bridge.command(np.array([np.nan, 0.0, 0.0]))
    state = bridge.state()
    assert rejected.rejected and state.status is BridgeStatus.HOLDING and "non-finite" in state.error
    np.testing.assert_allclose(rejected.target, state.ee_position, atol=0.001)  # nothing new was commanded
    held = settle(bridge)
    assert held[0] < start[0] + 0.05  # braked on the spot instead of finishing the 10 cm move
    assert bridge.command(np.array([0.0, 0.0, np.inf]), gripper=0.0).rejected
    assert bridge.command(np.zeros(3), gripper=float("nan")).rejected


def test_silence_triggers_the_watchdog_stop(make_bridge: Callable[..., FrankaBridge]) -> None:
    bridge = make_bridge(limits=HardLimits(max_translation=0.10, dynamics_factor=0.05))
    start = bridge.state().ee_position
    bridge.command(np.array([0.0, 0.10, 0.0]))
    assert wait_until(lambda: bridge.status is BridgeStatus.STOPPED, timeout=5.0)
    assert "watchdog" in bridge.state().error
    stopped = settle(bridge)
    assert stopped[1] - start[1] < 0.08  # stopped well short of the 10 cm target
    time.sleep(0.3)
    np.testing.assert_allclose(bridge.state().ee_position, stopped, atol=0.001)  # and stays
    bridge.command(np.zeros(3))  # a fresh command re-arms it
    assert bridge.status is BridgeStatus.READY


def test_reset_returns_home(make_bridge: Callable[..., FrankaBridge]) -> None:
    bridge = make_bridge(limits=SLOW_WATCHDOG)
    home = bridge.state()
    bridge.command(np.array([0.03, 0.02, -0.03]), yaw=0.1)
    settle(bridge)
    again = bridge.reset()
    np.testing.assert_allclose(again.joints, BridgeConfig().reset.home_joints, atol=0.01)
    np.testing.assert_allclose(again.ee_position, home.ee_position, atol=0.003)
    noisy = replace(BridgeConfig().reset, joint_noise=0.05)
    jittered = FrankaBridge(bridge.robot, bridge.gripper, BridgeConfig(reset=noisy), watchdog=False)
    offset = jittered.reset(np.random.default_rng(0)).joints - np.asarray(noisy.home_joints)
    assert 0.005 < np.abs(offset).max() <= 0.05 + 0.01


def test_yaw_rotates_about_the_base_z_axis(make_bridge: Callable[..., FrankaBridge]) -> None:
    bridge = make_bridge(limits=SLOW_WATCHDOG)
    before = bridge.state().ee_quaternion
    bridge.command(np.zeros(3), yaw=0.1)
    settle(bridge)
    after = bridge.state().ee_quaternion
    relative = _multiply(after, before * np.array([-1.0, -1.0, -1.0, 1.0]))  # after * before^-1
    assert 2.0 * np.arctan2(np.linalg.norm(relative[:3]), abs(relative[3])) == pytest.approx(0.1, abs=0.01)
    assert abs(relative[2]) > 0.99 * np.linalg.norm(relative[:3])


def test_gripper_channel_closes_and_opens(make_bridge: Callable[..., FrankaBridge]) -> None:
    bridge = make_bridge(limits=SLOW_WATCHDOG)
    bridge.command(np.zeros(3), gripper=1.0)
    assert wait_until(lambda: bridge.state().gripper_width < 0.01)
    bridge.command(np.zeros(3), gripper=0.0)  # between the thresholds: unchanged
    # Open, commanded at once and repeated at 5 Hz as a policy would: it is sent once the grasp has finished.
    for _ in range(100):
        bridge.command(np.zeros(3), gripper=-1.0)
        if bridge.state().gripper_width > 0.07:
            break
        time.sleep(0.2)
    assert bridge.state().gripper_width > 0.07


def test_a_robot_error_is_recovered_and_the_bridge_goes_on(make_bridge: Callable[..., FrankaBridge],
                                                           client: tuple[Any, Any]) -> None:
    robot = FaultInjectingRobot(client[0])
    bridge = make_bridge(robot, limits=SLOW_WATCHDOG, recovery=RecoveryConfig(retries=3, backoff_s=0.01))
    start = bridge.state().ee_position
    robot.faults = 1
    dropped = bridge.command(np.array([0.0, 0.0, -0.02]))
    assert dropped.rejected and "recovered" in dropped.reason and "cartesian_reflex" in dropped.reason
    assert bridge.recoveries == 1 and robot.recover_calls == 1 and bridge.status is BridgeStatus.READY
    assert not bridge.command(np.array([0.0, 0.0, -0.02])).rejected
    assert settle(bridge)[2] == pytest.approx(start[2] - 0.02, abs=0.002)


def test_a_persistent_robot_error_ends_in_a_clear_unrecoverable_state(make_bridge: Callable[..., FrankaBridge],
                                                                       client: tuple[Any, Any]) -> None:
    robot = FaultInjectingRobot(client[0])
    bridge = make_bridge(robot, limits=SLOW_WATCHDOG, recovery=RecoveryConfig(retries=3, backoff_s=0.02))
    robot.faults, robot.stuck = 1, True
    started = time.monotonic()
    with pytest.raises(RobotError, match=r"persists after 3 recover_from_errors attempts .*restart the bridge"):
        bridge.command(np.array([0.0, 0.0, -0.01]))
    assert time.monotonic() - started >= 0.02 * (1 + 2 + 4)  # exponential backoff between attempts
    assert robot.recover_calls == 3 and bridge.status is BridgeStatus.UNRECOVERABLE
    with pytest.raises(RobotError):  # every later command refuses at once
        bridge.command(np.zeros(3))
    robot.stuck, robot.errored = False, False  # let the fixture's other bridges use the client again


def _policy_after(call: Callable[[], object]) -> int:
    """The scheduling policy an ordinary thread is left with after `call`."""
    seen: list[int] = []

    def run() -> None:
        with ordinary_scheduling():
            call()
            seen.append(os.sched_getscheduler(0))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30.0)
    return seen[0]


def _connect_raw(server: EmbeddedFrankaSim) -> object:
    return franky.Robot(server.hostname, realtime_config=franky.RealtimeConfig.Ignore)


@pytest.mark.skipif(not hasattr(os, "sched_getscheduler"), reason="per-thread scheduling is Linux-only")
def test_libfrankas_realtime_priority_stays_in_libfranka() -> None:
    """A thread left at SCHED_FIFO 99 hands it to every thread and process it starts (scheduling.py)."""
    with EmbeddedFrankaSim(realtime=False) as server:
        raw = _policy_after(lambda: _connect_raw(server))
        if raw == os.SCHED_OTHER:
            pytest.skip("libfranka may not raise thread priorities here (no CAP_SYS_NICE): nothing to restore")
        assert raw == os.SCHED_FIFO  # the premise: connecting leaves the calling thread at FIFO
        sim, loop = EmbeddedFrankaSim(realtime=False), []
        try:  # franky-sim started from a thread franky left at FIFO: its 1 kHz loop is still an ordinary thread
            _policy_after(lambda: (_connect_raw(server), sim.start(),
                                   loop.append(os.sched_getscheduler(sim.loop_thread_id))))
        finally:
            sim.close()
        assert loop == [os.SCHED_OTHER]
    bridges: list[FrankaBridge] = []
    assert _policy_after(lambda: bridges.append(FrankaBridge.connect(BridgeConfig(), realtime=False))) == os.SCHED_OTHER
    bridges[0].close()


class _GarbledState:
    """The franky robot, whose state packets arrive truncated (libfranka's ProtocolException)."""

    def __init__(self, robot: object) -> None:
        self._robot = robot

    def __getattr__(self, name: str) -> object:
        if name == "state":
            raise franky.ProtocolException("libfranka: incorrect object size")
        return getattr(self._robot, name)


def test_a_garbled_state_packet_is_a_lost_connection_not_a_raw_franky_error() -> None:
    bridge = FrankaBridge.connect(BridgeConfig(), realtime=False)
    try:
        robot, bridge.robot = bridge.robot, _GarbledState(bridge.robot)
        with pytest.raises(ConnectionLost, match=r"incorrect object size.*rerun to resume$"):
            bridge.robot_time()
        assert bridge.status is BridgeStatus.UNRECOVERABLE
        bridge.robot = robot
    finally:
        bridge.close()


def test_a_lost_connection_is_a_one_line_error_and_the_bridge_stays_down() -> None:
    bridge = FrankaBridge.connect(BridgeConfig(), realtime=False)
    try:
        bridge.state()
        assert bridge.server is not None and bridge.connection_lost is None
        bridge.server.close()  # the robot goes away mid-session: its state stream stops
        with pytest.raises(ConnectionLost, match=r"^lost the connection to the robot at 127\.0\.0\.\d+ .*franky-sim is "
                                             r"closed.*rerun to resume$") as lost:  # the simulator's side is said too
            bridge.state()
        assert bridge.status is BridgeStatus.UNRECOVERABLE
        assert bridge.connection_lost == str(lost.value)  # what ends a node's process (BridgeNode.failure)
        with pytest.raises(ConnectionLost, match="lost the connection"):  # commands refuse with the same reason
            bridge.command(np.zeros(3))
    finally:
        bridge.close()


def test_franky_sim_says_when_a_client_leaves_unasked_but_not_when_the_bridge_closes(
        capfd: pytest.CaptureFixture[str]) -> None:
    with FrankaBridge.connect(BridgeConfig(), realtime=False) as bridge:
        bridge.state()
    assert "disconnected" not in capfd.readouterr().err  # a closing bridge's disconnect is not news
    with EmbeddedFrankaSim(realtime=False) as server:
        with keep_scheduling():
            robot = franky.Robot(server.hostname, realtime_config=franky.RealtimeConfig.Ignore)
        del robot  # a client going away on its own: what explains a later lost connection
        assert wait_until(lambda: "disconnected" in capfd.readouterr().err)


def test_paced_franky_sim_shortens_the_gil_switch_interval_while_it_runs_and_reports_its_loop() -> None:
    before = sys.getswitchinterval()
    with EmbeddedFrankaSim(realtime=False):  # unpaced: left alone (the docstring of SWITCH_INTERVAL_S says why)
        assert sys.getswitchinterval() == pytest.approx(before)
    with EmbeddedFrankaSim(realtime=True) as server:
        assert sys.getswitchinterval() == pytest.approx(min(before, SWITCH_INTERVAL_S))  # its 1 kHz loop gets the GIL
        assert wait_until(lambda: server.longest_pause_s > 0.0)
        assert re.fullmatch(r"franky-sim's loop: last step \d+\.\d\d s ago, longest pause \d+\.\d\d s",
                            server.health()), server.health()
    assert sys.getswitchinterval() == pytest.approx(before)
    assert server.health() == "franky-sim is closed"


def test_connecting_to_no_robot_is_a_one_line_error() -> None:
    with pytest.raises(RobotError, match=r"cannot connect to a Franka at 127.0.0.254 .*FCI"):
        FrankaBridge.connect(BridgeConfig(robot="127.0.0.254"))


def _multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product of (x, y, z, w) quaternions."""
    x1, y1, z1, w1 = a
    x2, y2, z2, w2 = b
    return np.array([w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2, w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
                     w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2, w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2])


class _Clock:
    """franky's robot state clock of a stand-in robot: each read advances it by `step` seconds of robot time."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def to_sec(self) -> float:
        self.now += self.step
        return self.now


class _Gripper:
    def __init__(self, answers_after: int) -> None:
        self.answers_after = answers_after

    def move_async(self, width: float, speed: float):
        gripper = self

        class Future:
            waits = 0

            def wait(self, timeout: float) -> bool:
                self.waits += 1
                return self.waits > gripper.answers_after
        return Future()


def _stand_in_bridge(clock_step: float, answers_after: int) -> FrankaBridge:
    from types import SimpleNamespace

    robot = SimpleNamespace(relative_dynamics_factor=0.0, has_errors=False, fci_hostname="stand-in",
                            state=SimpleNamespace(time=_Clock(clock_step)))
    return FrankaBridge(robot, _Gripper(answers_after), BridgeConfig(), watchdog=False)


def test_the_gripper_timeout_runs_in_robot_time() -> None:
    """A starved franky-sim (robot time crawling) gets its gripper's seconds; a gripper silent for 10 s of robot
    time is a one-line RobotError however fast those pass in wall time."""
    slow = _stand_in_bridge(clock_step=0.01, answers_after=200)  # 200 waits of 50 ms (10 s wall), 2 s robot time
    slow.open_gripper(wait=True)
    silent = _stand_in_bridge(clock_step=1.0, answers_after=10**9)
    with pytest.raises(RobotError, match="did not finish within 10 s") as error:
        silent.open_gripper(wait=True)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("lockstep", [False, True], ids=["free-running", "lock-step"])
def test_a_simulation_mujoco_resets_as_unstable_is_put_back_and_refuses_commands_until_the_next_reset(
        capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, lockstep: bool) -> None:
    """MuJoCo resets an unstable simulation to its defaults and goes on (seen once, in CI): the arm would jump to a
    singular pose mid-motion. The embedded sim puts the step before back, at rest; the bridge stops the arm and
    refuses every command with the reason until the next reset."""
    with FrankaBridge.connect(BridgeConfig(), realtime=False, lockstep=lockstep) as bridge:

        def tick() -> None:  # lock-step: the control loop lets the simulation run 0.2 s
            if lockstep:
                bridge.advance_to(bridge.robot_time() + 0.2)

        bridge.reset()
        assert not bridge.command(np.array([0.03, 0.0, 0.0])).rejected  # a motion of about a second runs
        tick()
        assert bridge.server is not None and bridge.robot.is_in_control
        before = bridge.state().joints
        bridge.server.call_in_sim(lambda model, data: data.qvel.__setitem__(0, 1e20))
        tick()
        assert wait_until(lambda: bool(bridge.server.instabilities))
        # no jump to MuJoCo's all-zero joints (1.5 rad away at joints 4 and 6); in lock-step the motion ran on 0.2 s
        assert np.abs(bridge.state().joints - before).max() < 0.3
        for _ in range(2):  # refused until the reset
            dropped = bridge.command(np.array([0.005, 0.0, 0.0]))
            assert dropped.rejected, dropped
            assert re.fullmatch(r"franky-sim's physics went unstable \(a NaN or huge joint velocity at DOF 0 after "
                                r"\d+\.\d{3} s\) and MuJoCo reset it: .* the episode in progress is void; "
                                r"end it and reset", dropped.reason), dropped.reason
            assert bridge.status is BridgeStatus.HOLDING and not bridge.robot.is_in_control
            tick()
        assert "1 unstable physics resets (the last: a NaN or huge joint velocity" in bridge.server.health()
        bridge.reset()
        assert not bridge.command(np.array([0.005, 0.0, 0.0])).rejected and bridge.status is BridgeStatus.READY
    err = capfd.readouterr().err
    assert "franky-sim: MuJoCo found a NaN or huge joint velocity at DOF 0" in err, err[-2000:]
    # closed right after a command: in lock-step libfranka first sees the motion start (about 1 close in 5 left
    # franky's control thread stranded in startMotion before FrankaBridge._release_lockstep did that)
    assert "did not disconnect" not in caplog.text


def test_a_client_stuck_in_libfranka_does_not_hang_the_close(monkeypatch: pytest.MonkeyPatch,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    """franky's Robot destructor waits for its control thread; once (lock-step, a suite run) that thread sat in
    libfranka's startMotion forever and the close with it. Here franky-sim swallows a Move, which leaves franky's
    thread exactly there: the close gives up on the client after DISCONNECT_WAIT_S, says so, and returns."""
    from franky_sim.franka_robot_protocol import MoveCommand

    import farl_control.bridge as bridge_module

    for wait in ("DISCONNECT_WAIT_S", "SETTLE_TIMEOUT_S", "LOCKSTEP_WAIT_S"):
        monkeypatch.setattr(bridge_module, wait, 2.0)
    bridge = FrankaBridge.connect(BridgeConfig(), realtime=False, lockstep=True)
    bridge.reset()
    monkeypatch.setattr(MoveCommand, "handle", lambda self, server: None)  # no motion, no answer
    with pytest.raises(RobotError, match="did not take the new motion"):
        bridge.command(np.array([0.005, 0.0, 0.0]))
    closing = threading.Thread(target=bridge.close, daemon=True)
    closing.start()
    closing.join(60.0)
    assert not closing.is_alive(), "FrankaBridge.close hung on franky's robot client"
    assert "did not disconnect from franky-sim within 2 s" in caplog.text
    assert bridge.server is not None and bridge.server.health() == "franky-sim is closed"
