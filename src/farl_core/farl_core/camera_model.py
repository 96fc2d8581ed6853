"""The pinhole camera model shared by the simulated D435 (farl_sim) and perception (farl_perception).

Pixel coordinates follow librealsense and OpenCV: (u, v) = (0, 0) is the centre of the top-left
pixel, u to the right, v down.  The camera frame is the optical frame (x right, y down, z forward),
and depth is the distance along the optical axis (z), the RealSense convention.  Extrinsics map
optical-frame points into the robot base frame (REP-105 `base`), which is what calibration
estimates and what every 3-D object position is expressed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from farl_core.errors import FarlError


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics of the colour stream (pixels); defaults are a D435 at 640x480."""

    width: int = 640
    height: int = 480
    fx: float = 615.0
    fy: float = 615.0
    cx: float = 319.5
    cy: float = 239.5

    @property
    def matrix(self) -> np.ndarray:
        """The 3x3 camera matrix K (OpenCV's cameraMatrix)."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def project(self, points_camera: np.ndarray) -> np.ndarray:
        """Pixel coordinates (..., 2) of camera-frame points (..., 3)."""
        points = np.asarray(points_camera, dtype=float)
        z = points[..., 2]
        return np.stack([self.fx * points[..., 0] / z + self.cx, self.fy * points[..., 1] / z + self.cy], axis=-1)

    def deproject(self, u: np.ndarray | float, v: np.ndarray | float, depth_m: np.ndarray | float) -> np.ndarray:
        """Camera-frame points (..., 3) for pixels (u, v) with depth along the optical axis (metres)."""
        z = np.asarray(depth_m, dtype=float)
        x = (np.asarray(u, dtype=float) - self.cx) / self.fx * z
        y = (np.asarray(v, dtype=float) - self.cy) / self.fy * z
        return np.stack(np.broadcast_arrays(x, y, z), axis=-1)


@dataclass(frozen=True)
class CameraExtrinsics:
    """The camera's optical frame in the robot base frame: camera_to_base maps camera points to base points."""

    position: tuple[float, float, float]
    rotation: tuple[tuple[float, float, float], ...]  # rows of R; its columns are the camera axes in base

    @classmethod
    def look_at(cls, position: tuple[float, float, float], target: tuple[float, float, float],
                up: tuple[float, float, float] = (0.0, 0.0, 1.0)) -> CameraExtrinsics:
        """A camera at `position` whose optical axis passes through `target`, image up towards `up`."""
        eye, aim, world_up = (np.asarray(v, dtype=float) for v in (position, target, up))
        z = aim - eye
        if np.linalg.norm(z) == 0.0:
            raise FarlError("camera position and look-at target coincide: move one of them")
        z /= np.linalg.norm(z)
        x = np.cross(z, world_up)
        if np.linalg.norm(x) < 1e-9:
            raise FarlError("camera looks along its 'up' vector: choose another up direction")
        x /= np.linalg.norm(x)
        y = np.cross(z, x)
        transform = np.eye(4)
        transform[:3, :3] = np.stack([x, y, z], axis=1)
        transform[:3, 3] = eye
        return cls.from_matrix(transform)

    @classmethod
    def from_matrix(cls, camera_to_base: np.ndarray) -> CameraExtrinsics:
        """From a 4x4 homogeneous camera_to_base transform (e.g. a calibration result)."""
        transform = np.asarray(camera_to_base, dtype=float)
        if transform.shape != (4, 4):
            raise FarlError(f"camera_to_base must be a 4x4 transform, got shape {transform.shape}")
        return cls(position=tuple(float(p) for p in transform[:3, 3]),
                   rotation=tuple(tuple(float(r) for r in row) for row in transform[:3, :3]))

    @property
    def matrix(self) -> np.ndarray:
        """camera_to_base as a 4x4 homogeneous transform."""
        transform = np.eye(4)
        transform[:3, :3] = np.asarray(self.rotation)
        transform[:3, 3] = self.position
        return transform

    def to_base(self, points_camera: np.ndarray) -> np.ndarray:
        """Base-frame points (..., 3) of optical-frame points (..., 3)."""
        rotation = np.asarray(self.rotation)
        return np.asarray(points_camera, dtype=float) @ rotation.T + np.asarray(self.position)

    def to_camera(self, points_base: np.ndarray) -> np.ndarray:
        """Optical-frame points (..., 3) of base-frame points (..., 3)."""
        rotation = np.asarray(self.rotation)
        return (np.asarray(points_base, dtype=float) - np.asarray(self.position)) @ rotation


@dataclass(frozen=True)
class RGBDFrame:
    """One capture: colour (H, W, 3) uint8 RGB, aligned depth (H, W) uint16 millimetres (0 = none).

    `time` is the capture stamp in seconds on the source's clock (sim time, the RealSense frame
    timestamp, or the bag message stamp); `intrinsics` are the colour stream's, which the aligned
    depth shares.
    """

    rgb: np.ndarray = field(repr=False)
    depth_mm: np.ndarray = field(repr=False)
    time: float
    intrinsics: CameraIntrinsics = CameraIntrinsics()
