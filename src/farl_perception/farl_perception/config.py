"""Configuration of perception (node `farl_perception`): detectors, object shapes, tracker, camera pose.

One dataclass tree, loadable from the `farl_perception: ros__parameters:` section of a YAML file
with `farl_core.config.load_section`.  Perception has to know three things per object, and each
has its own place here:

- how it looks: an HSV range for the colour filter (`ColourRange`) and/or a YOLO class
  (`YoloConfig.class_names`);
- how big it is (`ObjectModel`): depth sees the surface facing the camera, the tasks need the
  object's centre, and only the object's known size turns one into the other;
- where the camera is (`extrinsics` inline, or `calibration_file` written by calibration).

Per-object settings are mappings keyed by the object name (colour.ranges.object.lower, ...):
ROS 2 parameter files hold nested names but no lists of mappings.  `task_defaults(task)` fills
them for a Franka task from the task geometry (farl_core.franka_tasks, so sizes are never
written twice) and from the paint of the simulated scenes; `perception_config(task, path)` puts a
YAML file's section on top, which is where a real lab re-tunes the HSV ranges for its own objects
and lighting and sets its calibration file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from farl_core.camera_model import CameraExtrinsics
from farl_core.config import from_mapping, param, read_yaml, section_parameters, to_mapping
from farl_core.errors import ConfigError
from farl_core.franka_tasks import get_franka_task
from farl_perception.calibration import load_calibration

HSV = tuple[int, int, int]
"""OpenCV's 8-bit HSV: hue 0-179 (degrees / 2), saturation and value 0-255."""

HUE_MAX = 179
NODE = "farl_perception"
"""The node name: the YAML section perception reads."""


@dataclass(frozen=True)
class ColourRange:
    """The HSV box an object's pixels fall in (bounds inclusive).

    Red sits at both ends of the hue circle, so a range may wrap: lower hue > upper hue means
    hue >= lower or hue <= upper (e.g. 170 to 8).
    """

    lower: HSV
    upper: HSV

    def __post_init__(self) -> None:
        for bound, hsv in (("lower", self.lower), ("upper", self.upper)):
            if not (0 <= hsv[0] <= HUE_MAX and 0 <= hsv[1] <= 255 and 0 <= hsv[2] <= 255):
                raise ValueError(f"colour range {bound} {list(hsv)} is outside OpenCV's HSV "
                                 f"(hue 0-{HUE_MAX}, saturation and value 0-255)")
        if self.lower[1] > self.upper[1] or self.lower[2] > self.upper[2]:
            raise ValueError(f"colour range lower saturation/value {list(self.lower[1:])} above "
                             f"upper {list(self.upper[1:])} (only hue may wrap)")

    @property
    def wraps(self) -> bool:
        """True if the hue range crosses 179 -> 0 (reds)."""
        return self.lower[0] > self.upper[0]


@dataclass(frozen=True)
class ColourFilterConfig:
    """HSV thresholding, then morphology, then the largest blob per object."""

    ranges: dict[str, ColourRange] = field(default_factory=dict)   # object name -> its range
    kernel_size: int = param(5, ge=1, le=31)        # px, elliptical kernel of the opening and the closing
    min_area: int = param(60, ge=1)                 # px: smaller blobs are noise (a 3 cm object at 1.2 m is ~500)
    full_score_area: int = param(400, ge=1)         # px: a blob this large scores 1.0 (see colour_filter.py)

    def __post_init__(self) -> None:
        if self.kernel_size % 2 == 0:
            raise ValueError(f"colour.kernel_size must be odd (an even kernel shifts masks by half a pixel), "
                             f"got {self.kernel_size}")


@dataclass(frozen=True)
class YoloConfig:
    """A YOLOv8 detector through ultralytics; empty `weights` switches it off.

    Weights come from `farl perception train-detector` (nothing is ever downloaded).
    class_names maps detector class names to task object names ({cup: object}); classes not
    listed keep their own name, so a detector trained on the task's object names needs none.
    conf / iou / imgsz are ultralytics' predict arguments (its defaults for conf and iou; 320 px
    input keeps CPU inference near 35 ms a frame, inside the 200 ms budget of the 5 Hz loop).
    """

    weights: str = ""
    class_names: dict[str, str] = field(default_factory=dict)
    conf: float = param(0.25, ge=0.0, le=1.0)
    iou: float = param(0.45, ge=0.0, le=1.0)
    imgsz: int = param(320, ge=32, le=1920)
    device: str = "cpu"                             # "cpu", "cuda:0", ...

    @property
    def enabled(self) -> bool:
        return bool(self.weights)


@dataclass(frozen=True)
class ObjectModel:
    """An object's shape, for the step from the seen surface to its centre (localization.py).

    sphere: a ball of `radius`; upright: a prism standing on its base (cylinder, box) whose top
    face the camera sees, `height` tall.
    """

    shape: Literal["sphere", "upright"]
    radius: float = param(0.0, ge=0.0)              # m, sphere only
    height: float = param(0.0, ge=0.0)              # m, upright only

    def __post_init__(self) -> None:
        size, value = ("radius", self.radius) if self.shape == "sphere" else ("height", self.height)
        if value <= 0.0:
            raise ValueError(f"a {self.shape} object needs its {size} (> 0, metres)")


@dataclass(frozen=True)
class LocalizationConfig:
    """From a 2-D detection and aligned depth to an object centre in the base frame."""

    objects: dict[str, ObjectModel] = field(default_factory=dict)   # object name -> its shape
    min_points: int = param(20, ge=3)               # valid depth pixels needed for an estimate
    top_band: float = param(0.01, gt=0.0, le=0.05)  # m: a top face's height spread (~3 sigma of depth noise)
    min_top_fraction: float = param(0.1, gt=0.0, le=1.0)  # share of points a top face has at least


@dataclass(frozen=True)
class TrackerConfig:
    """Alpha-beta filter per object (tracker.py); gains for the 5 Hz loop, near critical damping."""

    alpha: float = param(0.7, gt=0.0, le=1.0)       # position gain
    beta: float = param(0.35, ge=0.0, lt=2.0)       # velocity gain (beta = alpha^2 / (2 - alpha) is critical)
    reacquire_distance: float = param(0.15, gt=0.0)  # m: a measurement this far from the prediction restarts
    confidence_decay: float = param(0.5, ge=0.0, lt=1.0)  # confidence factor per frame without a detection


@dataclass(frozen=True)
class PerceptionConfig:
    """Everything the Perception component needs besides its camera source and object names."""

    rate_hz: float = param(5.0, gt=0.0, le=60.0)    # the paper's 5 Hz; the node's timer / the runner paces step()
    read_timeout_s: float = param(1.0, gt=0.0)      # no frame for this long: the camera is stalled
    colour: ColourFilterConfig = field(default_factory=ColourFilterConfig)
    yolo: YoloConfig = field(default_factory=YoloConfig)
    localization: LocalizationConfig = field(default_factory=LocalizationConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    # camera_to_base: position (m) and rotation rows.  For programs (the simulated camera's known
    # pose); a ROS parameter file cannot hold the rows (no nested lists), it names a calibration_file.
    extrinsics: CameraExtrinsics | None = None
    calibration_file: str = ""                      # `farl perception calibrate`'s JSON (calibration.py)

    def __post_init__(self) -> None:
        if self.extrinsics is not None and self.calibration_file:
            raise ValueError("both extrinsics and calibration_file are set: keep one of them")
        if self.extrinsics is not None:
            _check_rotation(np.asarray(self.extrinsics.rotation, dtype=float), "extrinsics.rotation")

    def camera_extrinsics(self) -> CameraExtrinsics:
        """The camera pose in the base frame, from the inline value or the calibration file."""
        if self.extrinsics is not None:
            return self.extrinsics
        if not self.calibration_file:
            raise ConfigError("perception has no camera pose: set 'extrinsics' or 'calibration_file' "
                              "(a camera_to_base JSON from the extrinsic calibration)")
        return load_calibration(self.calibration_file).extrinsics


def _check_rotation(rotation: np.ndarray, where: str) -> None:
    """A pose typo must fail at load time, not as objects drawn in the wrong place."""
    if rotation.shape != (3, 3) or not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-3) \
            or np.linalg.det(rotation) < 0.0:
        raise ConfigError(f"{where} is not a rotation matrix (orthonormal rows, determinant +1)")


SIM_PAINT: dict[str, tuple[HSV, HSV]] = {
    "object": ((170, 100, 40), (8, 255, 255)),      # red (0.9, 0.05, 0.05): hue 0, wraps
    "wall": ((20, 100, 50), (35, 255, 255)),        # yellow: hue 26-30
    "obstacle": ((135, 100, 40), (165, 255, 255)),  # magenta: hue 142-156
    "ball": ((8, 80, 40), (22, 255, 255)),          # orange: hue 12-18; its shaded side desaturates
}
"""HSV ranges of the simulated scenes' colours (farl_sim scenes.py), measured on rendered frames:
the 1st-99th percentiles of each object's pixels (found with MuJoCo's segmentation render) with
margin, and clear of the blue floor (hue ~105), the green goal marker (hue 62-85) and the grey robot
(saturation < 60)."""

_SHAPES: dict[str, tuple[Literal["sphere", "upright"], str]] = {
    "object": ("upright", "object_height"),
    "wall": ("upright", "wall_height"),
    "obstacle": ("upright", "obstacle_height"),
    "ball": ("sphere", "ball_radius"),
}
"""Task object name -> shape and the task-geometry attribute holding its size."""


def default_colour_ranges(task: str) -> dict[str, ColourRange]:
    """The sim scene's HSV ranges for the objects of Franka task `task`."""
    return {name: ColourRange(*SIM_PAINT[name]) for name in get_franka_task(task).object_names}


def default_object_models(task: str) -> dict[str, ObjectModel]:
    """Shapes and sizes of the objects of Franka task `task`, from the task geometry."""
    franka_task = get_franka_task(task)
    models = {}
    for name in franka_task.object_names:
        shape, attribute = _SHAPES[name]
        size = float(getattr(franka_task.geometry, attribute))
        models[name] = ObjectModel(shape, radius=size) if shape == "sphere" else ObjectModel(shape, height=size)
    return models


def task_defaults(task: str) -> PerceptionConfig:
    """Colour-filter perception of Franka task `task`'s objects in the simulated scenes (no camera pose)."""
    return PerceptionConfig(colour=ColourFilterConfig(ranges=default_colour_ranges(task)),
                            localization=LocalizationConfig(objects=default_object_models(task)))


def perception_config(task: str, path: Path | None = None) -> PerceptionConfig:
    """task_defaults(task) with the `farl_perception` section of the YAML file `path` on top (key by key)."""
    defaults = task_defaults(task)
    if path is None:
        return defaults
    document = read_yaml(path)
    if NODE not in document:
        return defaults
    return perception_config_from_parameters(task, section_parameters(path, NODE, document[NODE]),
                                             where=f"{path}: {NODE}")


def perception_config_from_parameters(task: str, parameters: dict, where: str) -> PerceptionConfig:
    """task_defaults(task) with `parameters` (a nested mapping, e.g. a node's parameters) on top."""
    return from_mapping(PerceptionConfig, _overlay(to_mapping(task_defaults(task)), parameters), where=where)


def _overlay(base: dict, top: dict) -> dict:
    """`top` over `base`, nested mappings merged key by key (a file sets only what it changes)."""
    merged = dict(base)
    for key, value in top.items():
        below = merged.get(key)
        merged[key] = _overlay(below, value) if isinstance(below, dict) and isinstance(value, dict) else value
    return merged
