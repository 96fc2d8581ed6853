"""The simulated D435 of a Franka task scene as a CameraSource, with the ground truth beside it.

A thin adapter over farl_sim (scene), farl_control (EmbeddedFrankaSim) and SimulatedD435: it
starts the task's scene in franky-sim, resets it, and serves renders through the same `read`
the RealSense and bag sources have, so perception runs unchanged on it.  It also hands out what
no real camera can (the true camera pose and object positions), which is what tests and
benchmarks score perception against.

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
from farl_sim.franka_scenes import D435Config, FrankaScene, SimulatedD435, make_franka_scene
from farl_sim.franka_scenes.camera import DEFAULT_D435


class SimSource:
    """A running Franka task scene and its simulated D435 (use as a context manager, or call close).

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
            self.camera = SimulatedD435(self.sim, camera_config)
            self.reset()
            if positions:
                self.place(positions)
        except BaseException:
            self.sim.close()
            raise
        self._last_time = -np.inf

    @property
    def intrinsics(self) -> CameraIntrinsics:
        return self.camera.intrinsics

    @property
    def camera_to_base(self) -> np.ndarray:
        """Ground-truth extrinsics: the 4x4 transform from the camera's optical frame to the robot base."""
        return self.camera.camera_to_base

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
        """Free the renderer (in the thread that rendered) and stop the simulation (idempotent)."""
        self.camera.close()
        self.sim.close()

    def __enter__(self) -> SimSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
