"""franky-sim as the embedded robot: a MuJoCo FR3 serving the libfranka protocol on loopback.

`robot: sim` in the bridge config starts one of these in a background thread of the same
process, and the bridge connects to it with the real franky client, exactly as it would to a
Panda's FCI address.  Task scenes (farl_sim) add their objects through `scene` before the
model is compiled, and touch the running simulation only through `call_in_sim`, which runs a
function in the simulation thread between two 1 ms physics steps: the physics never sees a
half-written object pose, and a snapshot taken there is one consistent instant.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

import mujoco
from franky_sim import SimulationServer
from franky_sim.constants import DEFAULT_INITIAL_JOINT_POS
from franky_sim.mujoco_simulator import MujocoSimulator

from farl_control.scheduling import ordinary_scheduling
from farl_core.errors import FarlError

T = TypeVar("T")
SceneBuilder = Callable[[MujocoSimulator], None]

ROBOT_PREFIX = "robot0_"
"""franky-sim names the first robot's bodies, joints and geoms with this prefix."""


class EmbeddedFrankaSim:
    """A franky-sim server with one FR3 (and optional scene objects) on a loopback address.

    realtime: True paces the 1 kHz loop to the wall clock like a real robot; a float is a
    speed multiple (2.0 = twice real time); False runs as fast as the CPU allows (the franky
    client follows, since every motion is timed in robot ticks, not wall-clock seconds).
    """

    def __init__(self, scene: SceneBuilder | None = None, realtime: bool | float = True,
                 initial_q: tuple[float, ...] = DEFAULT_INITIAL_JOINT_POS) -> None:
        self._scene = scene
        self._realtime = realtime
        self._initial_q = initial_q
        self._jobs: queue.SimpleQueue[tuple[Callable[[mujoco.MjModel, mujoco.MjData], object], Future]] = \
            queue.SimpleQueue()
        self._sim: MujocoSimulator | None = None
        self._server: SimulationServer | None = None

    def start(self) -> EmbeddedFrankaSim:
        if self._server is not None:
            return self
        sim = MujocoSimulator()
        sim.init()
        sim.add_robot(initial_q=self._initial_q)
        if self._scene is not None:
            self._scene(sim)
        sim.register_post_step_callback(self._run_jobs)
        server = SimulationServer(sim)
        try:
            server.init()
        except Exception as exc:
            raise FarlError(f"franky-sim could not start ({exc}); is another process holding its loopback "
                            "ports (1337-1338)?") from exc
        with ordinary_scheduling():  # the caller may be at libfranka's FIFO 99 (scheduling.py)
            server.run_async(realtime=self._realtime)
        self._sim, self._server = sim, server
        return self

    def __enter__(self) -> EmbeddedFrankaSim:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the 1 kHz loop and release the loopback ports (idempotent)."""
        if self._server is None:
            return
        self._server.cleanup()
        assert self._sim is not None
        self._sim.cleanup()
        while not self._jobs.empty():  # a caller still waiting must not hang
            _, future = self._jobs.get_nowait()
            future.set_exception(FarlError("franky-sim was closed before the request ran"))
        self._server = self._sim = None

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

    def _run_jobs(self, sim: MujocoSimulator) -> None:
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
    def _running_sim(self) -> MujocoSimulator:
        if self._sim is None:
            raise FarlError("franky-sim is not running (call start() or use it as a context manager)")
        return self._sim
