"""FrankaBridge: the only code between a learned policy and the arm, identical in sim and on hardware.

The bridge drives a Panda through the franky client.  With `robot: sim` it first starts an
embedded franky-sim server (embedded_sim.py) and connects on loopback, so the same client calls,
the same motion types and the same error paths run in simulation as on a real FCI connection.

Every command passes the hard-limit layer (limits.py) before it reaches franky; nothing above
the bridge can bypass it:
  - NaN/inf in any channel: rejected, the arm holds where it is, status HOLDING with the reason;
  - translation capped per command and the target clipped into the workspace box, yaw capped;
  - every motion runs at the configured relative dynamics factor;
  - a watchdog thread stops motion when no command arrived for `watchdog_periods` control
    periods (a crashed or stalled policy node cannot leave the arm drifting to an old target);
    periods are counted in robot time (libfranka's 1 kHz state clock), which is wall time on a
    Panda and simulated time in franky-sim, however fast or slow the simulation runs (franky-sim
    in lock-step: checked at each tick, `advance_to`, since the simulation waits between ticks);
  - a robot error (franky ControlException, or `has_errors`) triggers `recover_from_errors`
    with exponential backoff; after `retries` failures the bridge is UNRECOVERABLE and every
    further command raises RobotError until a human intervenes.
Commands are asynchronous Cartesian motions to an absolute base-frame target: a new command
preempts the running one, as a 5 Hz policy needs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

import franky
import numpy as np

from farl_control.config import BridgeConfig
from farl_control.embedded_sim import EmbeddedFrankaSim, SceneBuilder
from farl_control.limits import LimitedCommand, limit_command
from farl_control.scheduling import keeps_scheduling
from farl_core.errors import FarlError

GRIPPER_TIMEOUT_S = 10.0
"""A Franka Hand motion takes at most ~2 s; longer (in robot time) means the gripper is not answering."""

GRIPPER_WALL_LIMIT_S = 120.0
"""Wall seconds after which a gripper wait gives up even if the robot clock barely moved (franky-sim starved)."""


SETTLE_TIMEOUT_S = 10.0
"""Longest wait for a stopped motion to end before the next motion type may start."""

LOCKSTEP_WAIT_S = 10.0
"""Longest wall-clock wait for franky-sim in lock-step to take a command or come to rest (it takes milliseconds)."""

DISCONNECT_WAIT_S = 10.0
"""Longest wall-clock wait for franky's Robot to disconnect from the embedded franky-sim on close (milliseconds as a
rule). Its destructor waits for franky's control thread, and once, in a suite run in lock-step, that thread sat in
libfranka's startMotion waiting for a motion franky-sim no longer had, forever (the cause, a motion stopped before
libfranka saw it start, `_release_lockstep` now avoids); should it happen again, the close leaves the client behind."""

log = logging.getLogger(__name__)


class RobotError(FarlError):
    """The robot cannot be reached or an error persists after bounded recovery."""


class ConnectionLost(RobotError):
    """The state stream stopped mid-session (libfranka's timeout): a new connection may work where a recovery cannot."""


class BridgeStatus(str, Enum):
    READY = "ready"
    HOLDING = "holding"              # last command rejected (NaN/inf): holding position
    STOPPED = "stopped"              # watchdog: commands went silent, motion stopped
    RECOVERING = "recovering"        # running recover_from_errors
    UNRECOVERABLE = "unrecoverable"  # recovery failed: needs a human


@dataclass(frozen=True)
class RobotStateSample:
    """One reading of the arm (the RobotState topic's content)."""

    ee_position: np.ndarray     # m, base frame
    ee_quaternion: np.ndarray   # (x, y, z, w), base frame
    ee_twist: np.ndarray        # (vx, vy, vz, wx, wy, wz), m/s and rad/s
    joints: np.ndarray          # rad
    joint_velocities: np.ndarray
    gripper_width: float        # m
    has_errors: bool
    status: BridgeStatus
    error: str                  # last rejection, watchdog or robot error message ("" when none)


class FrankaBridge:
    """Hard-limited end-effector delta control of one Panda (module docstring).

    Build it with `FrankaBridge.connect(config)`; the constructor takes already-connected franky
    objects so tests can wrap the real client (e.g. to inject faults franky-sim never raises).
    """

    def __init__(self, robot: Any, gripper: Any, config: BridgeConfig, server: EmbeddedFrankaSim | None = None,
                 watchdog: bool = True) -> None:
        self.robot = robot
        self.gripper = gripper
        self.config = config
        self.server = server
        self._lock = threading.RLock()
        self._status = BridgeStatus.READY
        self._error = ""
        self._unrecoverable: type[RobotError] = RobotError  # what UNRECOVERABLE raises: ConnectionLost once lost
        self._last_command = self.robot_time()
        self._gripper_closed: bool | None = None
        self._gripper_future: Any = None
        self.recoveries = 0
        self._instabilities_seen = 0  # EmbeddedFrankaSim.instabilities already reported (_new_instability)
        self._void: str | None = None  # why every command is refused until the next reset (an unstable simulation)
        robot.relative_dynamics_factor = config.limits.dynamics_factor
        self._closing = threading.Event()
        self._watchdog = threading.Thread(target=self._watch, daemon=True, name="farl-bridge-watchdog")
        if watchdog and not self.lockstep:  # in lock-step the watchdog checks at each tick (advance_to)
            self._watchdog.start()

    @classmethod
    @keeps_scheduling
    def connect(cls, config: BridgeConfig | None = None, scene: SceneBuilder | None = None,
                realtime: bool | float = True, lockstep: bool = False) -> FrankaBridge:
        """Connect to `config.robot`: "sim" starts franky-sim (with `scene`'s objects) on loopback first.

        `realtime` paces the simulation (EmbeddedFrankaSim); `lockstep` steps it only as the control loop
        allows (`advance_to`; lockstep_server.py), for runs that repeat exactly. Both are ignored for a real robot.
        """
        config = config or BridgeConfig()
        server = EmbeddedFrankaSim(scene, realtime=realtime, lockstep=lockstep).start() if config.robot == "sim" \
            else None
        host = server.hostname if server is not None else config.robot
        realtime_config = franky.RealtimeConfig.Enforce if config.realtime_kernel else franky.RealtimeConfig.Ignore
        try:
            robot = franky.Robot(host, realtime_config=realtime_config)
            gripper = franky.Gripper(host)
        except franky.Exception as exc:
            if server is not None:
                server.close()
            raise RobotError(f"cannot connect to a Franka at {host} ({exc}): check robot_ip, that FCI is "
                             "enabled in Desk, the brakes are open and the libfranka version matches") from exc
        return cls(robot, gripper, config, server)

    # --- commands -----------------------------------------------------------------------------

    @keeps_scheduling
    def command(self, delta: np.ndarray, yaw: float = 0.0, gripper: float | None = None) -> LimitedCommand:
        """Move the EE by `delta` (m, base frame) and `yaw` (rad) from where it is now, through the limits.

        `gripper` in [-1, 1]: above +threshold grasp, below -threshold open, in between unchanged.
        Returns what was executed; `rejected` is set (and the arm holds) for NaN/inf input or when
        a robot error interrupted the command and was recovered.
        """
        with self._lock:
            self._last_command = self.robot_time()
            self._raise_if_unrecoverable()
            if self.robot.has_errors:
                self._recover("robot reported an error before the command")
            pose = self.robot.current_cartesian_state.pose.end_effector_pose
            current = np.asarray(pose.translation, dtype=float)
            limited = limit_command(self.config.limits, current, delta, yaw)
            if not limited.rejected and gripper is not None and not np.isfinite(gripper):
                limited = LimitedCommand(current, 0.0, clipped=False, rejected=True,
                                         reason=f"non-finite gripper command {gripper}")
            if self._void is None and (unstable := self._new_instability()):
                self._void = unstable
                self._release_lockstep()
                self._settle()
            if self._void is not None:
                limited = LimitedCommand(current, 0.0, clipped=False, rejected=True, reason=self._void)
                self._status, self._error = BridgeStatus.HOLDING, self._void
                return limited
            if limited.rejected:
                self._hold(pose)
                self._status, self._error = BridgeStatus.HOLDING, limited.reason
                return limited
            target = franky.Affine(limited.target, _yawed(np.asarray(pose.quaternion, dtype=float), limited.yaw))
            try:
                self._move_to(target)
                if gripper is not None:
                    self._gripper(float(gripper))
            except franky.NetworkException as exc:
                raise self._lost(exc) from None
            except franky.Exception as exc:
                self._recover(f"{type(exc).__name__}: {exc}")
                return replace(limited, rejected=True, reason=f"robot error recovered, command dropped: {exc}")
            self._status, self._error = BridgeStatus.READY, ""
            return limited

    @keeps_scheduling
    def reset(self, rng: np.random.Generator | None = None) -> RobotStateSample:
        """Joint motion to the home pose (plus the configured random offset), gripper open; blocks until there."""
        settings = self.config.reset
        home = np.asarray(settings.home_joints, dtype=float)
        if rng is not None and settings.joint_noise > 0:
            home = home + rng.uniform(-settings.joint_noise, settings.joint_noise, size=7)
        with self._lock:
            self._raise_if_unrecoverable()
            healed = len(self.server.instabilities) if self.server is not None else 0  # by this reset's homing
            if self.robot.has_errors:
                self._recover("robot reported an error before the reset")
            self._release_lockstep()
            self._settle()
            # A motion's own factor multiplies the robot-wide one, so the reset speed is set robot-wide
            # for the duration of the reset and the commands' hard-limit factor restored afterwards.
            self.robot.relative_dynamics_factor = settings.dynamics_factor
            try:
                self._move_home(home)
            finally:
                self.robot.relative_dynamics_factor = self.config.limits.dynamics_factor
            self.open_gripper(wait=True)
            if self.lockstep:  # home and open: the episode starts from here, one tick at a time
                self._await_rest()
                self._sim.hold()
            self._last_command = self.robot_time()
            self._status, self._error, self._void = BridgeStatus.READY, "", None
            self._instabilities_seen = max(self._instabilities_seen, healed)
        return self.state()

    @keeps_scheduling
    def recover(self) -> RobotStateSample:
        """Clear robot errors on request (the bridge node's `recover` service), also after UNRECOVERABLE:
        the person who fixed the cause at the robot (Desk, user stop) resumes without a restart."""
        with self._lock:
            self._recover("recovery requested by the operator")
            self._last_command = self.robot_time()
            self._error = ""
        return self.state()

    @keeps_scheduling
    def open_gripper(self, wait: bool = False) -> None:
        self._send_gripper(False, wait)

    @keeps_scheduling
    def close_gripper(self, wait: bool = False) -> None:
        self._send_gripper(True, wait)

    # --- state ----------------------------------------------------------------------------------

    def state(self) -> RobotStateSample:
        """The latest reading. Not under the command lock: franky serves state reads while a motion runs, so
        the state keeps flowing during a reset (seconds of joint motion) instead of waiting for it."""
        with self._connection():
            cartesian = self.robot.current_cartesian_state
            joints = self.robot.current_joint_state
            twist = cartesian.velocity.end_effector_twist
            return RobotStateSample(
                ee_position=np.asarray(cartesian.pose.end_effector_pose.translation, dtype=float),
                ee_quaternion=np.asarray(cartesian.pose.end_effector_pose.quaternion, dtype=float),
                ee_twist=np.concatenate([twist.linear, twist.angular]).astype(float),
                joints=np.asarray(joints.position, dtype=float),
                joint_velocities=np.asarray(joints.velocity, dtype=float),
                gripper_width=float(self.gripper.width),
                has_errors=bool(self.robot.has_errors),
                status=self._status,
                error=self._error,
            )

    @property
    def status(self) -> BridgeStatus:
        return self._status

    @property
    def connection_lost(self) -> str | None:
        """The error of a lost connection (ConnectionLost), else None: libfranka's client is dead and blocks on its
        next call, so only a new process with a new connection goes on (a node stops its process on it)."""
        return self._error if self._unrecoverable is ConnectionLost else None

    @keeps_scheduling
    def close(self) -> None:
        """Stop the watchdog and the motion; shut down the embedded franky-sim if there is one (idempotent)."""
        if self._closing.is_set():
            return
        self._closing.set()
        if self._watchdog.is_alive():
            self._watchdog.join(timeout=2.0)
        with self._lock:
            try:
                if self.connection_lost is None:  # a dead client would block on the stop (connection_lost)
                    self._release_lockstep()
                    self._settle()
                    if self._gripper_future is not None:  # the next user of the gripper must not overlap it
                        self._await_gripper("the last gripper command")
            except (franky.Exception, RobotError):
                pass  # after an unrecoverable error, or a stop franky-sim did not finish: the client still goes
        if self.server is not None:
            # franky's Robot disconnects in its destructor: let it while franky-sim still answers (destroyed after
            # the server closed, one was seen blocking forever in libfranka's Robot::stop)
            self.server.client_leaving()
            self._disconnect()
            self.server.close()

    def __enter__(self) -> FrankaBridge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals ------------------------------------------------------------------------------

    @property
    def watchdog_timeout(self) -> float:
        return self.config.limits.watchdog_periods / self.config.control_rate_hz

    def _watch(self) -> None:
        period = 0.25 / self.config.control_rate_hz
        while not self._closing.wait(period):
            with self._lock:
                if self._status is BridgeStatus.UNRECOVERABLE:
                    return  # nothing reaches the arm any more; the next command reports why
                try:
                    silent = self.robot_time() - self._last_command
                except RobotError:
                    return  # the connection is gone (UNRECOVERABLE, with the reason)
                self._stop_if_silent(silent)

    def _stop_if_silent(self, silent: float) -> None:
        """The watchdog's rule: no command for longer than `watchdog_timeout` (robot time) stops the arm."""
        if self._status is BridgeStatus.READY and silent > self.watchdog_timeout:
            self._settle()
            self._status = BridgeStatus.STOPPED
            self._error = f"watchdog: no command for {silent:.2f} s (limit {self.watchdog_timeout:.2f} s)"

    def robot_time(self) -> float:
        """Seconds on the robot's 1 kHz state clock (simulated time under franky-sim; in lock-step the
        simulation's step count, since libfranka's clock then also counts the states resent while waiting)."""
        if self.lockstep:
            return self._sim.clock
        with self._connection():
            return float(self.robot.state.time.to_sec())

    # --- lock-step (franky-sim only) -------------------------------------------------------------

    @property
    def lockstep(self) -> bool:
        """franky-sim steps only as the control loop allows: the same seed gives the same run, to the bit."""
        return self.server is not None and self.server.lockstep

    @keeps_scheduling
    def advance_to(self, robot_time: float) -> None:
        """Lock-step's tick: let franky-sim run to `robot_time`, then wait until it rests there with every
        command answered, so that what the loop reads next is the state at exactly that instant.

        The watchdog's check runs here, at the tick, instead of in its thread (which would stop the arm at
        whatever step the wall clock chose)."""
        with self._lock:
            self._stop_if_silent(self.robot_time() - self._last_command)
            self._sim.run_until(robot_time)
            self._await_rest()

    @keeps_scheduling
    def idle(self) -> None:
        """The loop stops ticking for a while (an episode ended: PPO update, checkpoint, reset). In lock-step the
        running motion first runs to its end: libfranka drops a motion whose states stop for about a second.
        On a robot the arm simply holds its last target."""
        if self.lockstep:
            with self._lock:
                self._sim.run_motions()
                self._await_rest()
                self._sim.hold()

    @property
    def _sim(self) -> EmbeddedFrankaSim:
        if self.server is None or not self.server.lockstep:
            raise FarlError("advance_to needs franky-sim in lock-step: FrankaBridge.connect(config, lockstep=True)")
        return self.server

    def _await_rest(self) -> None:
        """Wait until franky-sim rests and libfranka agrees: a finished motion's handshake done, a new one's
        control loop running, a gripper command franky-sim answered received by franky's future."""
        sim = self._sim
        self._await_lockstep(lambda: sim.at_rest and sim.motion_running == self.robot.is_in_control, "come to rest")
        if self._gripper_future is not None and not sim.gripper_busy:
            self._gripper_future.wait(LOCKSTEP_WAIT_S)

    def _release_lockstep(self) -> None:
        """Before a reset or the close: stop the motion while the simulation waits (franky-sim takes the stop at
        this instant), then let it step whenever the arm or the gripper moves."""
        if self.lockstep:
            if self._sim.motion_unseen:  # a command with no tick after it: libfranka must see it start, 2 ms
                self._sim.run_until(self._sim.clock + 0.002)
                self._await_rest()
            self.robot.stop()
            self._sim.run_motions()

    def _await_lockstep(self, done: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + LOCKSTEP_WAIT_S
        while not done():
            if time.monotonic() > deadline:
                raise RobotError(f"franky-sim in lock-step did not {what} within {LOCKSTEP_WAIT_S:.0f} s "
                                 f"({self._sim.health()}); rerun with the same --out to resume")
            time.sleep(0.0002)

    @contextmanager
    def _connection(self) -> Iterator[None]:
        """A lost state stream (franky's NetworkException, or a bare RuntimeError "Net Exception", seen when
        franky-sim starved on an overloaded machine; or a ProtocolException "incorrect object size", a
        truncated state packet, seen once reading the state clock): the bridge's one-line RobotError,
        and UNRECOVERABLE (a rerun resumes)."""
        try:
            yield
        except (RuntimeError, franky.NetworkException, franky.ProtocolException) as exc:
            raise self._lost(exc) from None

    def _lost(self, exc: Exception) -> RobotError:
        """The connection is gone: UNRECOVERABLE (a dead libfranka client blocks on its next call), with why."""
        self._status, self._unrecoverable = BridgeStatus.UNRECOVERABLE, ConnectionLost
        where = f"; {self.server.health()}" if self.server is not None else ""
        self._error = (f"lost the connection to the robot at {self.robot.fci_hostname} ({exc}{where}): check the "
                       "cable and FCI (or a CPU too loaded to run franky-sim), then rerun to resume")
        return ConnectionLost(self._error)

    @keeps_scheduling  # also runs in the watchdog thread
    def _settle(self) -> None:
        """Stop any running motion and wait for it to end, swallowing the preemption franky reports then.

        The wait is long (a stop decelerates along the jerk-limited profile, slower than real time in
        franky-sim under load): starting a motion of another type before it ends is refused by franky.
        """
        self.robot.stop()
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while (left := deadline - time.monotonic()) > 0:
            try:
                if self.robot.join_motion(timeout=left):
                    return
            except (franky.ControlException, RuntimeError):  # the stopped motion's preemption report; join again
                time.sleep(0.01)

    def _move_home(self, home: np.ndarray) -> None:
        """The reset's joint motion, retried until SETTLE_TIMEOUT_S: franky refuses a new motion type while
        the stopped Cartesian motion's control loop is still winding down, and a robot error needs recovery.
        Each attempt builds a new motion object: franky refuses to start one twice."""
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while True:
            try:
                self.robot.move(franky.JointMotion(franky.JointState(home.tolist())))
                return
            except RuntimeError as exc:  # franky's planner on a (near) zero-length motion: already home?
                if np.allclose(self.robot.current_joint_state.position, home, atol=1e-3):
                    return
                if time.monotonic() > deadline:
                    raise RobotError(f"reset failed for {SETTLE_TIMEOUT_S:.0f} s ({exc}); check the robot and "
                                     "restart the bridge") from exc
                self._settle()
            except (franky.Exception, franky.InvalidMotionTypeException) as exc:  # the latter is no franky.Exception
                if isinstance(exc, franky.NetworkException):  # no state for libfranka's timeout: not recoverable here
                    raise self._lost(exc) from None
                if time.monotonic() > deadline:
                    raise RobotError(f"reset failed for {SETTLE_TIMEOUT_S:.0f} s ({type(exc).__name__}: {exc}); "
                                     "check the robot and restart the bridge") from exc
                if not isinstance(exc, franky.InvalidMotionTypeException):
                    self._recover(f"{type(exc).__name__}: {exc}")
                self._settle()
                time.sleep(0.05)

    def _move_to(self, target: Any) -> None:
        """Asynchronous Cartesian motion to `target`, preempting the running one.

        franky reports a planner failure of the running motion ("Motion planner failed", a plain
        RuntimeError; seen under CPU load as Ruckig -101) at the next `move`, which then did not
        start: the motion is retried once from rest.  A second refusal comes from preempting onto a
        target the arm practically sits on; stopping in place is then the same outcome, safely.
        """
        for _ in range(2):
            try:
                starts = self._sim.motions_started if self.lockstep and not self.robot.is_in_control else None
                self.robot.move(franky.CartesianMotion(target), asynchronous=True)
                if starts is not None:  # a new control loop: franky sends its Move from a thread of its own
                    self._await_lockstep(lambda n=starts: self._sim.motions_started > n, "take the new motion")
                return
            except RuntimeError:
                self._settle()

    @keeps_scheduling
    def wait_for_motion(self, timeout: float) -> bool:
        """Block until the running motion ends; False when it timed out or franky's planner aborted it.

        For scripted moves (robot check, calibration poses); a policy never waits, it preempts.
        """
        with self._lock:
            try:
                return bool(self.robot.join_motion(timeout=timeout))
            except RuntimeError as exc:  # planner failure mid-motion: the arm stopped short of the target
                self._error = f"motion aborted by franky's planner: {exc}"
                return False
            except franky.ControlException as exc:
                self._recover(f"{type(exc).__name__}: {exc}")
                return False

    def _hold(self, pose: Any) -> None:
        """Replace the running motion by one to the measured pose: the arm brakes and stays."""
        try:
            self._move_to(franky.Affine(pose.translation, pose.quaternion))
        except franky.Exception as exc:
            self._recover(f"{type(exc).__name__}: {exc}")

    def _gripper(self, value: float) -> None:
        """Act on the gripper channel without blocking: a change waits (across commands) for the previous
        gripper command to finish, since overlapping gripper commands are refused by the Franka Hand and
        leave the first unanswered in franky-sim."""
        threshold = self.config.gripper.threshold
        wanted = True if value > threshold else False if value < -threshold else None
        busy = self._gripper_future is not None and not self._gripper_future.wait(0.0)
        if wanted is not None and wanted != self._gripper_closed and not busy:
            self._send_gripper(wanted, wait=False)

    def _send_gripper(self, close: bool, wait: bool) -> None:
        settings = self.config.gripper
        if self._gripper_future is not None:
            self._await_gripper("the previous gripper command")
        taken = self._sim.gripper_commands if self.lockstep else None
        if close:
            self._gripper_future = self.gripper.grasp_async(0.0, settings.speed, settings.force, epsilon_inner=0.005,
                                                            epsilon_outer=settings.open_width)
        else:
            self._gripper_future = self.gripper.move_async(settings.open_width, settings.speed)
        self._gripper_closed = close
        if taken is not None:  # franky sends it from a thread of its own: taken before the simulation goes on
            self._await_lockstep(lambda: self._sim.gripper_commands > taken, "take the gripper command")
        if wait:
            self._await_gripper("opening" if not close else "closing")

    def _await_gripper(self, what: str) -> None:
        """Wait for the gripper command, timed in robot time like the watchdog: on a Panda that is wall time;
        franky-sim on a loaded machine runs slower than real time, and its gripper with it (a wall-clock
        timeout failed resets of the ROS graph's simulated world there)."""
        assert self._gripper_future is not None
        start, wall_start = self.robot_time(), time.monotonic()
        while not self._gripper_future.wait(0.05):
            if self.robot_time() - start > GRIPPER_TIMEOUT_S or time.monotonic() - wall_start > GRIPPER_WALL_LIMIT_S:
                raise RobotError(f"gripper: {what} did not finish within {GRIPPER_TIMEOUT_S:.0f} s; check the "
                                 "Franka Hand (homing in Desk) and restart the bridge")
        self._gripper_future = None

    def _recover(self, reason: str) -> None:
        """`recover_from_errors` up to `retries` times with exponential backoff, else UNRECOVERABLE."""
        settings = self.config.recovery
        self._status, self._error = BridgeStatus.RECOVERING, reason
        last = reason
        for attempt in range(settings.retries):
            time.sleep(settings.backoff_s * 2**attempt)
            try:
                self.robot.recover_from_errors()
            except franky.NetworkException as exc:  # the connection itself is gone: nothing to recover here
                raise self._lost(exc) from None
            except franky.Exception as exc:
                last = f"{type(exc).__name__}: {exc}"
                continue
            if not self.robot.has_errors:
                self.recoveries += 1
                self._status = BridgeStatus.READY
                return
        self._status = BridgeStatus.UNRECOVERABLE
        self._error = (f"robot error persists after {settings.retries} recover_from_errors attempts ({last}); "
                       "clear it at the robot (Desk, user stop) and restart the bridge")
        raise RobotError(self._error)

    def _new_instability(self) -> str | None:
        """franky-sim's physics reset by MuJoCo since the last command (EmbeddedFrankaSim.instabilities): the arm
        stops and every command is refused with this reason until the next reset, so the episode counts robot
        errors and the log says why."""
        if self.server is None or len(self.server.instabilities) <= self._instabilities_seen:
            return None
        self._instabilities_seen = len(self.server.instabilities)
        return (f"franky-sim's physics went unstable ({self.server.instabilities[-1]}) and MuJoCo reset it: the "
                "motion of that instant is lost, so the episode in progress is void; end it and reset")

    def _disconnect(self) -> None:
        """Drop franky's Robot and Gripper (their destructors disconnect) in a helper thread, waiting at most
        DISCONNECT_WAIT_S: a client stuck in libfranka must not hang the close and the process's exit."""
        client = [self.robot, self.gripper]
        del self.robot, self.gripper
        dropping = threading.Thread(target=client.clear, daemon=True, name="farl-bridge-disconnect")
        dropping.start()
        dropping.join(DISCONNECT_WAIT_S)
        if dropping.is_alive():
            log.warning("franky's robot client did not disconnect from franky-sim within %.0f s (its control thread "
                        "is waiting in libfranka); leaving it behind", DISCONNECT_WAIT_S)

    def _raise_if_unrecoverable(self) -> None:
        if self._status is BridgeStatus.UNRECOVERABLE:
            raise self._unrecoverable(self._error)


def _yawed(quaternion_xyzw: np.ndarray, yaw: float) -> np.ndarray:
    """`quaternion_xyzw` rotated by `yaw` about the base z axis (a left multiplication)."""
    if yaw == 0.0:
        return quaternion_xyzw
    half = yaw / 2.0
    qz = np.array([0.0, 0.0, np.sin(half), np.cos(half)])
    x1, y1, z1, w1 = qz
    x2, y2, z2, w2 = quaternion_xyzw
    return np.array([w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                     w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
                     w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
                     w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2])
