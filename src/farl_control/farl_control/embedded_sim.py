"""franky-sim as the embedded robot: a MuJoCo FR3 serving the libfranka protocol on loopback.

`robot: sim` in the bridge config starts one of these in a background thread of the same
process, and the bridge connects to it with the real franky client, exactly as it would to a
Panda's FCI address.  Task scenes (farl_sim) add their objects through `scene` before the
model is compiled, and touch the running simulation only through `call_in_sim`, which runs a
function in the simulation thread between two 1 ms physics steps: the physics never sees a
half-written object pose, and a snapshot taken there is one consistent instant.
"""

from __future__ import annotations

import logging
import queue
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import TextIO, TypeVar

import mujoco
from franky_sim import SimulationServer
from franky_sim.constants import DEFAULT_INITIAL_JOINT_POS
from franky_sim.mujoco_simulator import MujocoSimulator

from farl_control.lockstep_server import LockstepServer
from farl_control.scheduling import ordinary_scheduling
from farl_core.errors import FarlError

T = TypeVar("T")
SceneBuilder = Callable[[MujocoSimulator], None]

ROBOT_PREFIX = "robot0_"
"""franky-sim names the first robot's bodies, joints and geoms with this prefix."""
SWITCH_INTERVAL_S = 1e-4
"""The process's GIL switch interval while franky-sim runs.  Its 1 kHz loop is Python and gives the GIL up at
every socket call and sleep; at CPython's default 5 ms a thread that wants it back waits up to 5 ms each time,
so one busy Python thread in the process (an executor spinning, a renderer, torch glue) slowed the simulation
to 5% of real time and, on a loaded machine, left libfranka more than its one-second UDP timeout without a
state ("Net Exception", "UDP receive: Timeout").  Measured with one CPU-bound thread beside the loop:
default 0.05x real time, 0.1 ms 0.76x, idle 0.90x (`farl bench robot`; BENCHMARKS.md, "franky-sim and the GIL";
0.5 ms gave 0.37x by hand).  Only for a paced simulation (a real robot's stand-in, the ROS graph's): one loaded
suite run with 0.1 ms in unpaced simulations too ended a fine-tuning test in a NaN finger width, not reproduced
alone; until that is understood, unpaced runs (`farl run`, `farl demos`, the tests' envs) keep the default."""


UNSTABLE = {mujoco.mjtWarning.mjWARN_BADQACC: "acceleration", mujoco.mjtWarning.mjWARN_BADQVEL: "velocity",
            mujoco.mjtWarning.mjWARN_BADQPOS: "position"}
"""MuJoCo's warnings for a NaN, infinite or huge joint value: it then resets the whole simulation to the model's
defaults (the arm to all-zero joints, a singular pose from which franky's Cartesian motions flail, the objects to
their start poses) and goes on, printing one line.  The embedded sim puts the last good step's poses back, at
rest (EmbeddedFrankaSim.instabilities)."""
_instability_log = logging.getLogger("franky_sim.stability")  # shown by franky-sim's handler (_ConnectionLines)


class _StableStep:
    """The poses of the last stable step of one MjData, for undoing MuJoCo's reset of an unstable simulation.

    Runs after every step of the 1 kHz Python loop, so it works on views into MjData cached once: about 3 us a
    step, under 1% of an unpaced franky-sim step (about 430 us here); attribute look-ups and fresh copies took 9 us."""

    def __init__(self, data: mujoco.MjData) -> None:
        self.data = data
        self._counts = data.warning.number
        self._watched = [(int(warning), quantity) for warning, quantity in UNSTABLE.items()]
        self._live = (data.qpos, data.mocap_pos, data.mocap_quat)
        self._kept = tuple(array.copy() for array in self._live)
        self._time = float(data.time)

    def check(self, model: mujoco.MjModel) -> str | None:
        """None after a stable step (now kept); else what MuJoCo found, with the step before put back at rest."""
        counts = self._counts
        found = [(quantity, warning) for warning, quantity in self._watched if counts[warning]]
        if not found:
            for kept, live in zip(self._kept, self._live, strict=True):
                kept[:] = live
            self._time = self.data.time
            return None
        quantity, warning = found[0]
        what = f"a NaN or huge joint {quantity} at DOF {self.data.warning[warning].lastinfo} after {self._time:.3f} s"
        for watched, _ in self._watched:
            counts[watched] = 0
        for kept, live in zip(self._kept, self._live, strict=True):
            live[:] = kept
        self.data.qvel[:] = 0.0
        self.data.time = self._time
        mujoco.mj_forward(model, self.data)
        return what


_CLIENTS_LEAVING: set[int] = set()
"""ids of the servers whose client is closing on purpose (`EmbeddedFrankaSim.client_leaving`)."""


class _ConnectionLines(logging.Filter):
    """franky-sim's warnings and errors, and its INFO line on a client leaving unasked: rare, and what explains
    a lost connection (its other INFO lines are one per connection or motion)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or ("disconnected" in record.getMessage() and not _CLIENTS_LEAVING)


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a line comes (a caller may redirect it after the first sim)."""

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _: object) -> None:
        pass


def _show_connection_events() -> None:
    logger = logging.getLogger("franky_sim")
    if any(isinstance(f, _ConnectionLines) for h in logger.handlers for f in h.filters):
        return
    handler = _CurrentStderr()
    handler.setFormatter(logging.Formatter("franky-sim: %(message)s"))
    handler.addFilter(_ConnectionLines())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


class EmbeddedFrankaSim:
    """A franky-sim server with one FR3 (and optional scene objects) on a loopback address.

    realtime: True paces the 1 kHz loop to the wall clock like a real robot; a float is a
    speed multiple (2.0 = twice real time); False runs as fast as the CPU allows (the franky
    client follows, since every motion is timed in robot ticks, not wall-clock seconds).
    """

    def __init__(self, scene: SceneBuilder | None = None, realtime: bool | float = True,
                 initial_q: tuple[float, ...] = DEFAULT_INITIAL_JOINT_POS, lockstep: bool = False) -> None:
        self._scene = scene
        self._realtime = False if lockstep else realtime
        self.lockstep = lockstep
        """Step in lock-step with libfranka and the control loop (lockstep_server.py): the same seed, the same run."""
        self._initial_q = initial_q
        self._jobs: queue.SimpleQueue[tuple[Callable[[mujoco.MjModel, mujoco.MjData], object], Future]] = \
            queue.SimpleQueue()
        self._sim: MujocoSimulator | None = None
        self._server: SimulationServer | None = None
        self._last_step: float | None = None
        self._switch_interval: float | None = None
        self.longest_pause_s = 0.0
        """The longest wall-clock gap between two physics steps so far: libfranka drops the connection when
        no state comes for about a second (what a starved machine does to this Python 1 kHz loop)."""
        self._stable_step: _StableStep | None = None
        self.instabilities: list[str] = []
        """What MuJoCo found unstable each time it reset the simulation (UNSTABLE; seen once, in CI).  The poses of
        the step before are put back at rest, so nothing jumps, but the physics of that instant is lost: the bridge
        refuses commands until the next reset and says why (the episode in progress is void)."""

    def start(self) -> EmbeddedFrankaSim:
        if self._server is not None:
            return self
        _show_connection_events()
        sim = MujocoSimulator()
        sim.init()
        sim.add_robot(initial_q=self._initial_q)
        if self._scene is not None:
            self._scene(sim)
        sim.register_post_step_callback(self._run_jobs)
        server = LockstepServer(sim, self._run_jobs_now) if self.lockstep else SimulationServer(sim)
        try:
            server.init()
        except Exception as exc:
            raise FarlError(f"franky-sim could not start ({exc}); is another process holding its loopback "
                            "ports (1337-1338)?") from exc
        if self._realtime:
            self._switch_interval = sys.getswitchinterval()
            sys.setswitchinterval(min(self._switch_interval, SWITCH_INTERVAL_S))
        with ordinary_scheduling():  # the caller may be at libfranka's FIFO 99 (scheduling.py)
            server.run_async(realtime=self._realtime)
        self._sim, self._server = sim, server
        return self

    def __enter__(self) -> EmbeddedFrankaSim:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def client_leaving(self) -> None:
        """The client is about to disconnect on purpose (the bridge closing): its disconnect line is not news."""
        if self._server is not None:  # (close() forgets it again)
            _CLIENTS_LEAVING.add(id(self))

    def close(self) -> None:
        """Stop the 1 kHz loop and release the loopback ports (idempotent)."""
        if self._server is None:
            return
        self._server.cleanup()
        if self._switch_interval is not None:
            sys.setswitchinterval(self._switch_interval)
            self._switch_interval = None
        assert self._sim is not None
        self._sim.cleanup()
        while not self._jobs.empty():  # a caller still waiting must not hang
            _, future = self._jobs.get_nowait()
            future.set_exception(FarlError("franky-sim was closed before the request ran"))
        self._server = self._sim = None
        _CLIENTS_LEAVING.discard(id(self))

    @property
    def hostname(self) -> str:
        """The loopback address franky connects to (what `robot_ip` is for a real Panda)."""
        return self._running_server.robot_servers[0].hostname

    @property
    def loop_thread_id(self) -> int:
        """The native id of the thread running the 1 kHz loop (for scheduling and profiling tools)."""
        thread = self._running_server.async_thread
        assert thread is not None and thread.native_id is not None
        return thread.native_id

    @property
    def model(self) -> mujoco.MjModel:
        """The compiled scene (constant while running: safe to read from any thread)."""
        model = self._running_sim.model
        assert model is not None
        return model

    def call_in_sim(self, fn: Callable[[mujoco.MjModel, mujoco.MjData], T], timeout: float = 5.0) -> T:
        """Run `fn(model, data)` in the simulation thread between two physics steps and return its result."""
        self._running_server  # noqa: B018  (raises if not running)
        future: Future = Future()
        self._jobs.put((fn, future))
        try:
            return future.result(timeout=timeout)
        except TimeoutError as exc:
            raise FarlError(f"franky-sim did not step for {timeout} s (simulation thread stalled)") from exc

    # --- lock-step (lockstep_server.py) ------------------------------------------------------------

    @property
    def clock(self) -> float:
        """Simulated seconds: 1 ms per physics step (the robot clock in lock-step, see send_idle_state)."""
        return self._lockstep_server.steps * 1e-3

    def run_until(self, clock: float) -> None:
        """Let the simulation step until `clock` (s, see `clock`), then wait there."""
        self._lockstep_server.allow(round(clock * 1000.0))

    def hold(self) -> None:
        """Stop stepping where the simulation is now (the control loop's tick: nothing moves while it thinks)."""
        server = self._lockstep_server
        server.allow(server.steps)

    def run_motions(self) -> None:
        """Step only while the arm or the gripper moves (a reset: each motion runs to its end, then all waits)."""
        self._lockstep_server.allow(None)

    @property
    def at_rest(self) -> bool:
        """Lock-step waiting for the control loop: at its limit (or with nothing moving), libfranka answered."""
        return self._lockstep_server.at_rest

    @property
    def motions_started(self) -> int:
        """Move commands franky-sim has taken (a control loop started by libfranka)."""
        return self._lockstep_server.robot_server.moves

    @property
    def motion_running(self) -> bool:
        return bool(self._lockstep_server.robot_server.current_motion_id)

    @property
    def motion_unseen(self) -> bool:
        """A motion libfranka has not seen start yet (LockstepRobotServer.motion_unseen): do not stop it yet."""
        return self._lockstep_server.robot_server.motion_unseen

    @property
    def gripper_busy(self) -> bool:
        """A gripper command is in progress (franky-sim answers it when the fingers settle)."""
        return self._lockstep_server.robot_server.gripper_busy

    @property
    def gripper_commands(self) -> int:
        return self._lockstep_server.robot_server.gripper_commands

    def health(self) -> str:
        """One line on the 1 kHz loop, for a lost connection's error: alive, its last step, its longest pause."""
        server = self._server
        if server is None:
            return "franky-sim is closed"
        thread = server.async_thread
        if thread is None or not thread.is_alive():
            return "franky-sim's loop thread has stopped (an exception in the simulation: see the log above)"
        since = time.monotonic() - self._last_step if self._last_step is not None else float("nan")
        line = f"franky-sim's loop: last step {since:.2f} s ago, longest pause {self.longest_pause_s:.2f} s"
        if self.instabilities:
            line += f", {len(self.instabilities)} unstable physics resets (the last: {self.instabilities[-1]})"
        if isinstance(server, LockstepServer):
            line += (f"; lock-step: longest wait with a motion running "
                     f"{server.longest_hold_s:.2f} s (libfranka's limit: 1 s), {server.forced_steps} steps forced, "
                     f"{server.resent_states} states resent, "
                     f"longest gap between two polls {server.longest_gap_s:.2f} s")
            if (waiting := server.waiting_for) is not None:
                line += f"; waiting {time.monotonic() - waiting[1]:.2f} s for {waiting[0]}"
        return line

    def _run_jobs(self, sim: MujocoSimulator) -> None:
        now = time.monotonic()
        if self._last_step is not None:
            self.longest_pause_s = max(self.longest_pause_s, now - self._last_step)
        self._last_step = now
        self._check_stability(sim.model, sim.data)
        self._run_jobs_now()  # on self._sim, also between steps in lock-step (LockstepServer's idle)

    def _check_stability(self, model: mujoco.MjModel, data: mujoco.MjData) -> None:
        """After each step: undo MuJoCo's reset of an unstable simulation (UNSTABLE) and say so."""
        if self._stable_step is None or self._stable_step.data is not data:
            self._stable_step = _StableStep(data)
        if (what := self._stable_step.check(model)) is not None:
            self.instabilities.append(what)
            _instability_log.error("MuJoCo found %s and reset the simulation; the poses of the step before are back, "
                                   "at rest: the episode in progress is void", what)

    def _run_jobs_now(self) -> None:
        sim = self._sim
        if sim is None:
            return
        while not self._jobs.empty():
            fn, future = self._jobs.get_nowait()
            try:
                future.set_result(fn(sim.model, sim.data))
            except Exception as exc:  # noqa: BLE001 - handed to the caller, must never kill the 1 kHz loop
                future.set_exception(exc)

    @property
    def _running_server(self) -> SimulationServer:
        if self._server is None:
            raise FarlError("franky-sim is not running (call start() or use it as a context manager)")
        return self._server

    @property
    def _lockstep_server(self) -> LockstepServer:
        server = self._running_server
        if not isinstance(server, LockstepServer):
            raise FarlError("franky-sim was started without lockstep=True; the lock-step calls need it")
        return server

    @property
    def _running_sim(self) -> MujocoSimulator:
        if self._sim is None:
            raise FarlError("franky-sim is not running (call start() or use it as a context manager)")
        return self._sim
