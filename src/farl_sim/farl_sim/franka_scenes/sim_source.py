"""The simulated D435 of a Franka task scene as a perception CameraSource, and the ground truth beside it.

Two ways to get one:
  - `SceneCamera(sim, config)`: renders a simulation someone else runs, e.g. the embedded
    franky-sim the bridge drives in `farl run --robot sim`, so perception sees the very world the
    robot acts in;
  - `SimSource(task)`: starts its own task scene in franky-sim first (perception on its own:
    `farl perception run`, benchmarks, node tests).
Both serve renders through the same `read` the RealSense and bag sources have, so perception runs
unchanged on them.  `GroundTruthObjects` skips the camera altogether (`--camera ground-truth`):
perception's output type filled from the simulator, for runs that isolate learning from vision.

The simulation runs unpaced (realtime=False) by default: frames are rendered on demand, and
nothing here waits on the wall clock.  Rendering happens in the thread that calls `read`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np

from farl_control.embedded_sim import EmbeddedFrankaSim
from farl_core.camera_model import CameraIntrinsics, RGBDFrame
from farl_perception.camera_source import CameraStalled
from farl_perception.objects import DetectionSource, ObjectArray, ObjectEstimate
from farl_sim.franka_scenes.camera import DEFAULT_D435, D435Config, RunningSim, SimulatedD435
from farl_sim.franka_scenes.scenes import FrankaScene, make_franka_scene


class SceneCamera:
    """A CameraSource rendering a running simulation through the camera its scene added (read/close in one thread)."""

    def __init__(self, sim: RunningSim, camera_config: D435Config = DEFAULT_D435) -> None:
        self.camera = SimulatedD435(sim, camera_config)
        self._last_time = -np.inf

    @property
    def intrinsics(self) -> CameraIntrinsics:
        return self.camera.intrinsics

    @property
    def camera_to_base(self) -> np.ndarray:
        """Ground-truth extrinsics: the 4x4 transform from the camera's optical frame to the robot base."""
        return self.camera.camera_to_base

    def read(self, timeout_s: float = 1.0) -> RGBDFrame:
        """Render the scene now, in this thread; the render is newer than the last (simulation time moved on)."""
        deadline = time.monotonic() + timeout_s
        while True:
            frame = self.camera.capture()
            if frame.time > self._last_time:
                self._last_time = frame.time
                return frame
            if time.monotonic() >= deadline:
                raise CameraStalled(f"simulation time stayed at {frame.time:.3f} s for {timeout_s} s: the simulation "
                                    "is paused or stalled; check that franky-sim is running")

    def close(self) -> None:
        """Free the renderer (in the thread that rendered; idempotent)."""
        self.camera.close()

    def __enter__(self) -> SceneCamera:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SimSource(SceneCamera):
    """A task scene of its own in franky-sim and its simulated D435 (use as a context manager, or call close).

    task: a Franka task name ("fragile-push-wall", "disturbed-push", "bounded-soccer"); seed: the
    generator of `reset`'s object positions; positions: object centres to place after the first
    reset instead of sampled ones; realtime: passed to EmbeddedFrankaSim.  Read and close in one
    thread (the renderer's OpenGL context belongs to the thread of the first read).
    """

    def __init__(self, task: str, seed: int = 0, camera_config: D435Config = DEFAULT_D435,
                 positions: Mapping[str, np.ndarray] | None = None, realtime: bool | float = False) -> None:
        self.scene: FrankaScene = make_franka_scene(task, camera=camera_config)
        self._rng = np.random.default_rng(seed)
        self.sim = EmbeddedFrankaSim(scene=self.scene.build, realtime=realtime).start()
        try:
            super().__init__(self.sim, camera_config)
            self.reset()
            if positions:
                self.place(positions)
        except BaseException:
            self.sim.close()
            raise

    def object_states(self) -> dict[str, np.ndarray]:
        """Ground-truth object centres (base frame, metres), all from one simulation instant."""
        return self.scene.object_states(self.sim)

    def reset(self, rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
        """Re-sample goal and object start positions (from `rng`, else the source's seeded one); the new states."""
        return self.scene.reset(self.sim, self._rng if rng is None else rng)

    def place(self, positions: Mapping[str, np.ndarray]) -> None:
        """Put movable objects at given centres (base frame), at rest."""
        for name, position in positions.items():
            self.scene.place(self.sim, name, np.asarray(position, dtype=float))

    def close(self) -> None:
        """Free the renderer (in the thread that rendered) and stop the simulation (idempotent)."""
        super().close()
        self.sim.close()


class GroundTruthObjects:
    """Perception's step() from the simulator's true object states: every object fresh, stamped with sim time."""

    def __init__(self, scene: FrankaScene, sim: EmbeddedFrankaSim) -> None:
        self.scene = scene
        self.sim = sim
        self._last: dict[str, np.ndarray] = {}
        self._last_time: float | None = None

    def step(self) -> ObjectArray:
        names = self.scene.task.object_names
        stamp, positions = self.sim.call_in_sim(lambda m, d: (float(d.time), {n: d.body(n).xpos.copy() for n in names}))
        dt = stamp - self._last_time if self._last_time is not None else 0.0
        objects = tuple(
            ObjectEstimate(name, position, (position - self._last[name]) / dt if dt > 0 and name in self._last
                           else np.zeros(3), 1.0, False, DetectionSource.SIM)
            for name, position in positions.items())
        self._last, self._last_time = positions, stamp
        return ObjectArray(stamp, objects)

    def close(self) -> None:
        """Nothing to free: the simulation belongs to the bridge."""
