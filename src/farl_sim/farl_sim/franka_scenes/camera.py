"""A simulated Intel RealSense D435: 640x480 RGB and aligned depth (uint16 mm) rendered from the running sim.

What it reproduces of the real camera, and why:
- The colour stream's pinhole intrinsics (fx = fy = 615 px, principal point at the image centre,
  what a D435 reports at 640x480 to within a few pixels), so perception's deprojection code runs
  unchanged on sim frames.  MuJoCo renders any fx, fy, cx, cy through the camera's `focalpixel`,
  `principalpixel`, `resolution` and `sensorsize` attributes (checked against projected points in
  the tests), so a real unit's calibration can be used as is.
- Depth aligned to colour (realsense-ros `aligned_depth_to_color`): here trivially, both come from
  the same MuJoCo camera.  MuJoCo's depth buffer, after mujoco.Renderer's conversion, is the
  distance along the optical axis (z in the camera frame, verified: a plane facing the camera has
  the same depth in every pixel), which is the RealSense convention too.
- Units and invalid pixels: uint16 millimetres, 0 where there is no depth (closer than min_depth,
  farther than max_depth).
- Optional noise: Gaussian with sigma = depth_noise * z^2, the quadratic growth of stereo depth
  error (disparity error over focal length x baseline); depth_noise = 0.005 /m gives 5 mm at 1 m and
  2 cm at 2 m, inside Intel's "< 2 % at 2 m" RMS-error figure.  Seeded, so runs repeat.

Pixel coordinates follow librealsense and OpenCV: (u, v) = (0, 0) is the centre of the top-left
pixel, u to the right, v down; MuJoCo's symmetric frustum puts the optical axis at
((width - 1) / 2, (height - 1) / 2) in these coordinates.  The camera frame is the optical frame
(x right, y down, z forward).

Rendering happens in the caller's thread, never in the 1 kHz simulation thread: `capture` copies
the full simulation state inside `call_in_sim` (one consistent instant), restores it into a
private MjData, runs mj_forward and renders there.  An OpenGL context belongs to the thread that
made it, so the renderer is created on the first capture and the camera must then be used (and
closed) from that same thread.
"""

from __future__ import annotations

import importlib.util
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import mujoco
import numpy as np

from farl_core.camera_model import CameraExtrinsics, CameraIntrinsics, RGBDFrame
from farl_core.errors import FarlError

T = TypeVar("T")

SENSOR_PIXEL_PITCH = 3e-6
"""Metres per pixel given to MuJoCo's `sensorsize`; any value gives the same image (it cancels out)."""


def load_torch_compiler_before_gl() -> None:
    """Import torch's compiler stack (if torch is installed) before this process makes a GL context.

    Mesa (MUJOCO_GL=egl or osmesa) and triton each bring an LLVM; with Mesa's loaded first, a later
    `import torch._dynamo` (every torch optimiser does it) segfaults the process: render, then train,
    in one process.  Reproduced with torch 2.15 and mujoco 3.3 as `mujoco.GLContext(64, 64)
    .make_current(); import triton` (exit 139); the other order is fine.
    """
    if importlib.util.find_spec("torch") is not None:
        import torch._dynamo  # noqa: F401


class RunningSim(Protocol):
    """What the camera needs of a simulator: EmbeddedFrankaSim satisfies it."""

    @property
    def model(self) -> mujoco.MjModel: ...

    def call_in_sim(self, fn: Callable[[mujoco.MjModel, mujoco.MjData], T], timeout: float = 5.0) -> T: ...


DEFAULT_EXTRINSICS = CameraExtrinsics.look_at(position=(1.05, 0.0, 0.80), target=(0.52, 0.0, 0.0))
"""In front of the robot, 0.96 m from the workspace centre, looking down 56 degrees: sees all of
x [0.34, 0.75] x y [-0.25, 0.25] and over the 8 cm wall, with the arm behind the objects."""


@dataclass(frozen=True)
class D435Config:
    """A simulated D435: where it is, what it sees, how noisy its depth is."""

    name: str = "d435"
    intrinsics: CameraIntrinsics = CameraIntrinsics()
    extrinsics: CameraExtrinsics = DEFAULT_EXTRINSICS
    depth_noise: float = 0.0    # 1/m: sigma = depth_noise * z^2; 0.005 is a realistic D435 at this range
    min_depth: float = 0.2      # m: closer pixels read 0 (a D435's minimum range is below this at 640x480)
    max_depth: float = 10.0     # m: the D435's rated maximum range
    seed: int = 0
    shadows: bool = False       # off: franky-sim's 4096 px shadow map costs ~0.35 s a frame on a CPU renderer


DEFAULT_D435 = D435Config()


def _mjcf_xyaxes(extrinsics: CameraExtrinsics) -> str:
    """MuJoCo's camera looks along its -z with y up: its x is the optical x, its y the optical -y."""
    rotation = np.asarray(extrinsics.rotation)
    return " ".join(f"{v:.9g}" for v in (*rotation[:, 0], *(-rotation[:, 1])))


def add_camera(mujoco_root: ET.Element, config: D435Config) -> ET.Element:
    """Add the camera to an MJCF tree before it compiles (and an offscreen buffer big enough for it)."""
    intrinsics = config.intrinsics
    worldbody = mujoco_root.find("worldbody")
    if worldbody is None:
        raise FarlError("the MJCF scene has no <worldbody> to hold the camera")
    visual = mujoco_root.find("visual")
    if visual is None:
        visual = ET.SubElement(mujoco_root, "visual")
    offscreen = visual.find("global")
    if offscreen is None:
        offscreen = ET.SubElement(visual, "global")
    offscreen.set("offwidth", str(max(intrinsics.width, int(offscreen.get("offwidth", 0)))))
    offscreen.set("offheight", str(max(intrinsics.height, int(offscreen.get("offheight", 0)))))
    # MuJoCo's principal offset is from the image centre; a positive x moves the principal point left
    # in the image and a positive y moves it down (found by rendering a point with a known offset).
    principal = ((intrinsics.width - 1) / 2.0 - intrinsics.cx, intrinsics.cy - (intrinsics.height - 1) / 2.0)
    return ET.SubElement(
        worldbody, "camera", name=config.name, mode="fixed",
        pos=" ".join(f"{p:.9g}" for p in config.extrinsics.position), xyaxes=_mjcf_xyaxes(config.extrinsics),
        resolution=f"{intrinsics.width} {intrinsics.height}",
        sensorsize=f"{intrinsics.width * SENSOR_PIXEL_PITCH:.9g} {intrinsics.height * SENSOR_PIXEL_PITCH:.9g}",
        focalpixel=f"{intrinsics.fx:.9g} {intrinsics.fy:.9g}", principalpixel=f"{principal[0]:.9g} {principal[1]:.9g}")


def _snapshot(model: mujoco.MjModel, data: mujoco.MjData, spec: int) -> np.ndarray:
    state = np.empty(mujoco.mj_stateSize(model, spec))
    mujoco.mj_getState(model, data, state, spec)
    return state


class SimulatedD435:
    """Renders RGB-D frames of a running sim from the camera that `add_camera` put in its scene."""

    _STATE = mujoco.mjtState.mjSTATE_INTEGRATION  # everything mj_step reads: qpos, mocap poses, time, ...

    def __init__(self, sim: RunningSim, config: D435Config = DEFAULT_D435) -> None:
        self._sim = sim
        self.config = config
        self._model = sim.model
        camera_id = mujoco.mj_name2id(self._model, mujoco.mjtObj.mjOBJ_CAMERA, config.name)
        if camera_id < 0:
            raise FarlError(f"the scene has no camera '{config.name}': build it with a FrankaScene whose camera "
                            "config has this name (or call add_camera in the scene builder)")
        self._camera_id = camera_id
        self._data = mujoco.MjData(self._model)
        self._rng = np.random.default_rng(config.seed)
        self._renderer: mujoco.Renderer | None = None
        self._thread: int | None = None

    @property
    def intrinsics(self) -> CameraIntrinsics:
        return self.config.intrinsics

    @property
    def camera_to_base(self) -> np.ndarray:
        """4x4 transform from the optical frame to the robot base frame."""
        return self.config.extrinsics.matrix

    def capture(self) -> RGBDFrame:
        """Render the sim as it is now: one consistent snapshot, rendered in this thread."""
        state = self._sim.call_in_sim(lambda m, d: _snapshot(m, d, self._STATE))
        mujoco.mj_setState(self._model, self._data, state, self._STATE)
        mujoco.mj_forward(self._model, self._data)
        renderer = self._renderer_here()
        renderer.update_scene(self._data, camera=self._camera_id)
        rgb = renderer.render()
        renderer.enable_depth_rendering()
        try:
            depth_m = renderer.render().astype(np.float64)
        finally:
            renderer.disable_depth_rendering()
        return RGBDFrame(rgb=rgb, depth_mm=self._to_millimetres(depth_m), time=float(self._data.time),
                         intrinsics=self.intrinsics)

    def project(self, points_base: np.ndarray) -> np.ndarray:
        """Pixel coordinates (..., 2) of base-frame points (..., 3)."""
        return self.intrinsics.project(self.config.extrinsics.to_camera(points_base))

    def deproject(self, u: np.ndarray | float, v: np.ndarray | float, depth_mm: np.ndarray | float) -> np.ndarray:
        """Base-frame points (..., 3) for pixels with depth in millimetres; NaN where the depth is 0 (none)."""
        depth = np.asarray(depth_mm, dtype=float)
        depth = np.where(depth > 0, depth / 1000.0, np.nan)
        return self.config.extrinsics.to_base(self.intrinsics.deproject(u, v, depth))

    def close(self) -> None:
        """Free the OpenGL context (call from the thread that captured; idempotent)."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
            self._thread = None

    def __enter__(self) -> SimulatedD435:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _renderer_here(self) -> mujoco.Renderer:
        if self._renderer is None:
            load_torch_compiler_before_gl()
            intrinsics = self.intrinsics
            try:
                self._renderer = mujoco.Renderer(self._model, height=intrinsics.height, width=intrinsics.width)
            except Exception as exc:  # noqa: BLE001  (the GL backends raise assorted types)
                raise FarlError(f"offscreen rendering is unavailable ({exc}); export MUJOCO_GL=egl "
                                "(or check `farl doctor`)") from exc
            self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = self.config.shadows
            self._thread = threading.get_ident()
        elif self._thread != threading.get_ident():
            raise FarlError("a SimulatedD435 renders only in the thread that made its first capture "
                            "(an OpenGL context is bound to one thread): create one camera per thread")
        return self._renderer

    def _to_millimetres(self, depth_m: np.ndarray) -> np.ndarray:
        config = self.config
        valid = (depth_m >= config.min_depth) & (depth_m <= config.max_depth)
        if config.depth_noise > 0.0:
            depth_m = depth_m + self._rng.normal(size=depth_m.shape) * config.depth_noise * depth_m ** 2
        millimetres = np.rint(np.clip(depth_m, 0.0, 65.535) * 1000.0)
        return np.where(valid, millimetres, 0).astype(np.uint16)
