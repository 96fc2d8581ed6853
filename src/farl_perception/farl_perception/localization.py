"""From a 2-D detection and aligned depth to the object's centre in the robot base frame.

Depth measures the surface facing the camera, not the object's centre, and the task states
(farl_core.franka_tasks, the simulator's object_states) are centres.  Deprojecting the median
pixel at the median depth lands on that surface, which for the D435 mount (looking down 56
degrees) is a radius or half a height (3 to 7 cm) from the centre, in a direction that changes
with the object's place in the image: no constant offset fixes that within the 1 cm target.  So
every pixel of the detection with valid depth is deprojected into a 3-D point, and the centre is
estimated from those points with the object's known size (config.ObjectModel):

- sphere (radius R): the points lie on a sphere of known radius; the centre is the least-squares
  fit of |p - c| = R (Gauss-Newton from the median point pushed R along the viewing ray, with
  outliers trimmed).  It uses the shape of the whole visible cap, so a partial mask (a shaded
  side missed by the colour filter, an occluding gripper) does not pull the centre.
- upright (height H, a cylinder or box standing on its base): the camera looks down on it, so
  its top face is the highest dense layer of points: the highest height with at least
  min_top_fraction of the points within top_band below it, moved to the median height around it.
  The face's points are those within +-2.5 sigma of that level (sigma from the face's upper half,
  where no side points are), each slid along its pixel's ray onto the face's plane, which removes
  the depth noise from x and y.  The centre is their median x, y (a disc's or a rectangle's
  centre, by symmetry, whatever part of the side face is hidden) at the level minus H/2.  Needs
  the camera above the object's top (true for any look-down mount).

Robustness: zero depth (no stereo match) is ignored, and every statistic is a median, a
dense-layer search or a trimmed fit, so scattered outliers do not move the estimate.  The mask
is not eroded: "flying pixels" at a silhouette (depth between the object and the background)
fall outside the top layer or the sphere fit's inliers anyway, while eroding would cut the top
face's far rim but not its near one (that borders the side face) and pull the centre towards the
camera.  A box without a mask (a plain YOLO detector) is sampled whole: its table pixels lie far
below the top layer or far off the sphere and drop out the same way, whereas the box's central
part would hold only the near half of a top face seen at an angle (1.3 cm off, measured).  A box
that is largely filled by another, taller object would have that object's top taken for the
top face: a colour range (fusion.py) or a segmentation model avoids it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from farl_core.camera_model import CameraExtrinsics, RGBDFrame
from farl_perception.colour_filter import box_mask
from farl_perception.config import LocalizationConfig, ObjectModel
from farl_perception.objects import Detection, DetectionSource

SPHERE_ITERATIONS = 10
TRIM_SIGMAS = 3.0          # sphere-fit residuals beyond this many robust sigmas are outliers
MIN_TRIM = 0.003           # m: never trim residuals smaller than this (noise-free depth has sigma ~ 0)
LEVEL_ITERATIONS = 3
MIN_FACE_WINDOW = 0.002    # m: a top face's height spread without noise (1 mm depth steps)


@dataclass(frozen=True)
class Measurement:
    """One object's centre as measured in one frame (the tracker's input)."""

    name: str
    position: np.ndarray       # m, base frame: the object's centre
    score: float               # the detection's score
    source: DetectionSource
    points: int                # depth pixels the estimate used


class Localizer:
    """Turns detections into object centres with the camera pose and the objects' shapes."""

    def __init__(self, config: LocalizationConfig, extrinsics: CameraExtrinsics) -> None:
        self._config = config
        self._extrinsics = extrinsics

    def locate(self, detection: Detection, frame: RGBDFrame) -> Measurement | None:
        """The centre of the detected object, or None if too few depth pixels support it."""
        model = self._config.objects.get(detection.name)
        if model is None:
            raise KeyError(f"no ObjectModel for '{detection.name}'")
        points = surface_points(frame, self.support(detection, frame.depth_mm.shape), self._extrinsics)
        if len(points) < self._config.min_points:
            return None
        centre = self.centre(points, model)
        if centre is None:
            return None
        return Measurement(detection.name, centre, detection.score, detection.source, len(points))

    def support(self, detection: Detection, shape: tuple[int, int]) -> np.ndarray:
        """bool mask of the pixels whose depth is sampled: the detection's mask, else its whole box."""
        if detection.mask is not None:
            return detection.mask
        if detection.box is None:
            raise ValueError(f"detection of '{detection.name}' has neither a mask nor a box")
        return box_mask(shape, detection.box).astype(bool)

    def centre(self, points: np.ndarray, model: ObjectModel) -> np.ndarray | None:
        """The object centre from its visible surface points (base frame)."""
        if model.shape == "sphere":
            return sphere_centre(points, model.radius, np.asarray(self._extrinsics.position))
        return upright_centre(points, model.height, np.asarray(self._extrinsics.position), self._config.top_band,
                              self._config.min_top_fraction)


def surface_points(frame: RGBDFrame, support: np.ndarray, extrinsics: CameraExtrinsics) -> np.ndarray:
    """Base-frame points (n, 3) of the support pixels that have depth (0 = no depth is skipped)."""
    rows, cols = np.nonzero(support & (frame.depth_mm > 0))
    depth_m = frame.depth_mm[rows, cols].astype(float) / 1000.0
    return extrinsics.to_base(frame.intrinsics.deproject(cols, rows, depth_m))


def sphere_centre(points: np.ndarray, radius: float, camera_position: np.ndarray) -> np.ndarray:
    """Centre of a sphere of known radius through `points` (trimmed Gauss-Newton least squares)."""
    surface = np.median(points, axis=0)
    ray = surface - camera_position
    centre = surface + radius * ray / np.linalg.norm(ray)  # the seen surface faces the camera
    inliers = np.ones(len(points), dtype=bool)
    for _ in range(SPHERE_ITERATIONS):
        offsets = points[inliers] - centre
        distances = np.linalg.norm(offsets, axis=1)
        directions = offsets / np.maximum(distances, 1e-9)[:, None]
        # residual r = |p - c| - R, d r / d c = -direction: normal equations of the linearised fit
        step, *_ = np.linalg.lstsq(directions, distances - radius, rcond=None)
        centre = centre + step
        residuals = np.linalg.norm(points - centre, axis=1) - radius
        sigma = 1.4826 * np.median(np.abs(residuals - np.median(residuals)))
        inliers = np.abs(residuals) <= max(TRIM_SIGMAS * sigma, MIN_TRIM)
        if inliers.sum() < 4:
            inliers[:] = True
    return centre


def upright_centre(points: np.ndarray, height: float, camera_position: np.ndarray, band: float,
                   min_fraction: float) -> np.ndarray | None:
    """Centre of an upright object of known height from the points of its top face (see the module doc)."""
    z = np.sort(points[:, 2])
    below = np.arange(1, len(z) + 1) - np.searchsorted(z, z - band, side="left")  # points in [z_i - band, z_i]
    dense = np.nonzero(below >= min_fraction * len(z))[0]
    if len(dense) == 0:
        return None
    level = float(z[dense[-1]])  # the upper edge of the top face's height distribution
    for _ in range(LEVEL_ITERATIONS):  # to its centre: the median of the heights around it
        level = float(np.median(z[np.abs(z - level) <= band]))
    # the face's own spread, from its upper half (side points all lie below the level): a window of
    # +-2.5 sigma keeps the whole face and as little of the side as the depth noise allows
    above = z[z > level] - level
    sigma = float(np.median(above)) / 0.6745 if len(above) else 0.0
    window = min(max(2.5 * sigma, MIN_FACE_WINDOW), band)
    face = points[np.abs(points[:, 2] - level) <= window]
    # slide each point along its pixel's ray onto the face's plane: removes the depth noise from x, y
    scale = (level - camera_position[2]) / (face[:, 2] - camera_position[2])
    on_face = camera_position + (face - camera_position) * scale[:, None]
    x, y = np.median(on_face[:, :2], axis=0)
    return np.array([x, y, level - height / 2.0])
