"""Labelled detector training images rendered from the simulated task scenes (YOLO dataset layout).

Why synthetic: no dataset can be downloaded, and a simulated scene knows exactly which pixel shows
which object, so labels cost nothing and are exact.  The renders come from the same MJCF scenes
(farl_sim.franka_scenes) and the same D435 camera model the rest of the stack uses, so class
names are the perception names the tasks report (one class per distinct object name across the
selected tasks: "object" is the red cup in Fragile Push Wall and the red puck in Disturbed Push).

Labels.  MuJoCo's segmentation rendering gives each pixel the geom it shows; a pixel belongs to a
task object when its geom belongs to the body of that name.  The rule for hidden objects: an
object is labelled iff at least `min_visible_pixels` of its pixels are visible (25 px at 640x480,
scaled with the image area, at least 4 px), and its box is the tight box of the visible pixels.
So a partly occluded or partly out-of-frame object gets the box of what the camera sees (clipped
to the image by construction), and an object behind another one or outside the image gets no box:
a detector must not be taught to report what it cannot see.  Boxes use YOLO's pixel-edge
convention (pixel column j spans [j, j + 1]), normalised in the label files.

Domain randomisation, per image, each from that image's own seeded generator (image i is the
same whatever `n_images` is, and the same seed repeats exactly):
  positions   the task's start distribution (scene.reset), or with `table_fraction` probability
              uniform on the table, kept apart from each other and from static objects;
  lighting    each light's intensity and direction, the headlight's ambient level;
  colour      hue / saturation / value noise on the task objects, bounded (hue +-11 degrees by
              default) so a red object stays red; a tint on the table texture;
  camera      a few cm and degrees around the configured extrinsics (the real mount is never
              exactly where the calibration says);
  distractors up to `distractors` boxes and cylinders of random size and colour on the table,
              never in a task object's hue (their box would be a missing label);
  image       Gaussian pixel noise and, sometimes, blur.
Everything random is written into a private copy of the model; nothing else sees it.

Rendering is fast because nothing is simulated: the franky-sim scene is compiled once per task
(no server, no loopback ports), the arm stays at its home pose (out of the way, at the top edge
of the image), and each image is one colour and one segmentation render of a private MjData.
The arm therefore never occludes an object here, unlike in a pushing episode.
"""

from __future__ import annotations

import colorsys
import copy
import json
import shutil
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

import cv2
import mujoco
import numpy as np
import yaml
from franky_sim.mujoco_simulator import MujocoSimulator
from tqdm import tqdm

from farl_core.atomic_files import replace_folder
from farl_core.camera_model import CameraExtrinsics, CameraIntrinsics
from farl_core.errors import FarlError
from farl_core.table_geometry import TableRect
from farl_sim.franka_scenes import D435Config, FrankaScene, make_franka_scene
from farl_sim.franka_scenes.camera import DEFAULT_D435, load_torch_compiler_before_gl

T = TypeVar("T")

DISTRACTOR_POOL = 6
"""Distractor bodies built into every synthesis scene (alternately boxes and cylinders); a fixed
pool keeps the compiled model independent of the randomisation settings, so it is compiled once."""
DISTRACTOR_PREFIX = "synth_distractor_"
HIDDEN = (0.0, 0.0, -1.0)
"""Where unused distractors wait: a metre under the opaque table plane, so no camera sees them."""
DISTRACTOR_HALF_SIZE = (0.015, 0.05)   # m: footprint half size (box) or radius (cylinder)
DISTRACTOR_HEIGHT = (0.02, 0.12)       # m
DISTRACTOR_HUE_GAP = 0.07
"""Hue circle fraction (25 degrees) a distractor keeps from every task object's jittered hue range."""
PLACEMENT_MARGIN = 0.005               # m between footprints on the table
PLACEMENT_TRIES = 50
REFERENCE_PIXELS = 640 * 480           # min_visible_pixels is given for this image area
JPEG_QUALITY = 95


@dataclass(frozen=True)
class Randomisation:
    """How far each image departs from the nominal scene (`Randomisation.none()`: not at all)."""

    table_fraction: float = 0.5                  # images with objects uniform on the table, not at task starts
    table: TableRect = TableRect(0.30, 0.80, -0.30, 0.30)  # uniform placements; a little beyond the view
    light_scale: tuple[float, float] = (0.5, 1.4)          # multiplies each light's diffuse colour
    light_tilt_deg: float = 25.0                 # each light's direction turns by up to this
    ambient: tuple[float, float] | None = (0.0, 0.25)  # headlight ambient level (None: the scene's own)
    hue_jitter: float = 0.03                     # +- fraction of the hue circle (0.03: 11 degrees)
    saturation_jitter: float = 0.25              # saturation scaled by 1 +- this
    value_jitter: float = 0.3                    # brightness scaled by 1 +- this
    table_tint: float = 0.4                      # each channel of the table texture scaled by [1 - this, 1]
    camera_shift: float = 0.02                   # m, uniform on each axis
    camera_tilt_deg: float = 3.0                 # rotation about a random axis, up to this
    noise_sigma: float = 5.0                     # Gaussian pixel noise, std up to this (of 255)
    blur_probability: float = 0.3
    blur_sigma: tuple[float, float] = (0.4, 1.2)  # px at 640 px wide, scaled with the image
    distractors: int = 4                         # up to this many per image (at most DISTRACTOR_POOL)

    @classmethod
    def none(cls) -> Randomisation:
        """The nominal scene: task start positions only, no other change."""
        return cls(table_fraction=0.0, light_scale=(1.0, 1.0), light_tilt_deg=0.0, ambient=None,
                   hue_jitter=0.0, saturation_jitter=0.0, value_jitter=0.0, table_tint=0.0, camera_shift=0.0,
                   camera_tilt_deg=0.0, noise_sigma=0.0, blur_probability=0.0, distractors=0)

    def check(self) -> None:
        if not 0 <= self.distractors <= DISTRACTOR_POOL:
            raise FarlError(f"distractors must be in [0, {DISTRACTOR_POOL}], got {self.distractors}")
        if not 0.0 <= self.table_fraction <= 1.0 or not 0.0 <= self.blur_probability <= 1.0:
            raise FarlError("table_fraction and blur_probability are probabilities: give values in [0, 1]")


@dataclass(frozen=True)
class BoxLabel:
    """One labelled object: its tight box (x0, y0, x1, y1) in pixel-edge coordinates and visible pixel count."""

    name: str
    class_id: int
    box: tuple[float, float, float, float]
    pixels: int

    def yolo_line(self, width: int, height: int) -> str:
        x0, y0, x1, y1 = self.box
        return (f"{self.class_id} {(x0 + x1) / 2 / width:.6f} {(y0 + y1) / 2 / height:.6f} "
                f"{(x1 - x0) / width:.6f} {(y1 - y0) / height:.6f}")


@dataclass(frozen=True)
class LabelledImage:
    """One render: RGB (H, W, 3) uint8, its boxes, the true object centres, the objects too hidden to label."""

    rgb: np.ndarray = field(repr=False)
    boxes: tuple[BoxLabel, ...]
    objects: dict[str, np.ndarray]
    unlabelled: tuple[str, ...]


class _StillScene:
    """A compiled scene at rest, driven by FrankaScene's reset/place/object_states (they need only call_in_sim)."""

    def __init__(self, model: mujoco.MjModel, data: mujoco.MjData) -> None:
        self.model = model
        self.data = data

    def call_in_sim(self, fn: Callable[[mujoco.MjModel, mujoco.MjData], T], timeout: float = 5.0) -> T:
        return fn(self.model, self.data)


def _with_distractors(build: Callable[[MujocoSimulator], None]) -> Callable[[MujocoSimulator], None]:
    """Wrap a scene builder: add the distractor pool (visual only, mocap so they move without physics)."""
    def build_with_distractors(sim: MujocoSimulator) -> None:
        build(sim)
        largest = DISTRACTOR_HALF_SIZE[1], DISTRACTOR_HEIGHT[1] / 2  # compiled at full size: rbound covers all
        for k in range(DISTRACTOR_POOL):
            body = ET.SubElement(sim.worldbody, "body", name=f"{DISTRACTOR_PREFIX}{k}", mocap="true",
                                 pos=" ".join(map(str, HIDDEN)))
            kind, size = ("box", (largest[0], largest[0], largest[1])) if k % 2 == 0 else ("cylinder", largest)
            ET.SubElement(body, "geom", type=kind, size=" ".join(map(str, size)), contype="0", conaffinity="0")
    return build_with_distractors


_COMPILED: dict[str, tuple[mujoco.MjModel, np.ndarray]] = {}
"""MJCF text -> (compiled model, home qpos): compiling the FR3 meshes takes seconds, a scene renders in ms."""


def _compiled_scene(scene: FrankaScene) -> tuple[mujoco.MjModel, mujoco.MjData]:
    """A private model and data of the scene with the arm at franky-sim's home pose (no simulation server)."""
    sim = MujocoSimulator()
    sim.init()
    sim.add_robot()
    _with_distractors(scene.build)(sim)
    xml = ET.tostring(sim.scene, encoding="unicode")
    if xml not in _COMPILED:
        sim.start()  # franky-sim compiles and puts the arm at home
        _COMPILED[xml] = (copy.deepcopy(sim.model), sim.data.qpos.copy())
        sim.cleanup()
    pristine, home = _COMPILED[xml]
    model = copy.deepcopy(pristine)
    data = mujoco.MjData(model)
    data.qpos[:] = home
    mujoco.mj_forward(model, data)
    return model, data


def _random_rotation(rng: np.random.Generator, max_deg: float) -> np.ndarray:
    """A unit quaternion turning by up to `max_deg` about a uniformly random axis."""
    axis = rng.normal(size=3)
    quat = np.zeros(4)
    mujoco.mju_axisAngle2Quat(quat, axis / np.linalg.norm(axis), np.deg2rad(rng.uniform(0.0, max_deg)))
    return quat


def _image_size(camera: D435Config, imgsz: int) -> tuple[int, int]:
    """Rendered (width, height): `imgsz` wide, in the camera's aspect ratio."""
    return int(imgsz), int(round(imgsz * camera.intrinsics.height / camera.intrinsics.width))


def _min_pixels(min_visible_pixels: int, width: int, height: int) -> int:
    """The visibility threshold, given for 640x480, scaled to the image area (at least 4 px)."""
    return max(4, round(min_visible_pixels * width * height / REFERENCE_PIXELS))


def _hue_distance(a: float, b: float) -> float:
    return abs((a - b + 0.5) % 1.0 - 0.5)


def _overlaps(rect: TableRect, others: Sequence[TableRect]) -> bool:
    m = PLACEMENT_MARGIN
    return any(rect.x_min < o.x_max + m and o.x_min < rect.x_max + m and rect.y_min < o.y_max + m
               and o.y_min < rect.y_max + m for o in others)


def _rect(xy: np.ndarray, half: np.ndarray) -> TableRect:
    return TableRect(xy[0] - half[0], xy[0] + half[0], xy[1] - half[1], xy[1] + half[1])


class SceneSynthesizer:
    """One task scene compiled once and rendered many times, each time freshly randomised and labelled.

    Renders in the caller's thread (an OpenGL context is bound to the thread that made it): create,
    use and close it in one thread.  Needs offscreen rendering (MUJOCO_GL=egl or osmesa).
    """

    def __init__(self, task: str, class_names: Sequence[str], imgsz: int = 640,
                 randomisation: Randomisation = Randomisation(), camera: D435Config = DEFAULT_D435,
                 min_visible_pixels: int = 25) -> None:
        randomisation.check()
        self.scene = make_franka_scene(task, camera=camera)
        self.randomisation = randomisation
        self.camera = camera
        names = self.scene.task.object_names
        missing = [name for name in names if name not in class_names]
        if missing:
            raise FarlError(f"class names {list(class_names)} lack {missing} of task '{task}': build them from "
                            "the objects of every task you synthesize")
        self.class_ids = {name: list(class_names).index(name) for name in names}
        self.model, self.data = _compiled_scene(self.scene)
        self._still = _StillScene(self.model, self.data)
        self.width, self.height = _image_size(camera, imgsz)
        self.min_pixels = _min_pixels(min_visible_pixels, self.width, self.height)
        self._geom_class = self._geom_classes()
        self._pristine = {name: getattr(self.model, name).copy() for name in
                          ("geom_rgba", "mat_rgba", "light_diffuse", "light_dir", "cam_pos", "cam_quat")}
        self._headlight = self.model.vis.headlight.ambient.copy()
        self._camera_id = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, camera.name)
        self._ground_material = int(self.model.geom_matid[mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_GEOM,
                                                                              "ground")])
        self._distractors = [self.model.body(f"{DISTRACTOR_PREFIX}{k}") for k in range(DISTRACTOR_POOL)]
        self._halves = {name: self._footprint_half(name) for name in names}
        self._static = [_rect(self.data.body(name).xpos, self._halves[name]) for name in names
                        if name not in self.scene.movable]
        self._object_hues = [colorsys.rgb_to_hsv(*self._pristine["geom_rgba"][g, :3])[0]
                             for g in np.flatnonzero(self._geom_class >= 0)]
        load_torch_compiler_before_gl()
        global_ = self.model.vis.global_
        global_.offwidth, global_.offheight = max(global_.offwidth, self.width), max(global_.offheight, self.height)
        try:
            self._renderer = mujoco.Renderer(self.model, height=self.height, width=self.width)
        except Exception as exc:  # noqa: BLE001  (the GL backends raise assorted types)
            raise FarlError(f"offscreen rendering is unavailable ({exc}); export MUJOCO_GL=egl "
                            "(or check `farl doctor`)") from exc
        self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = camera.shadows

    @property
    def intrinsics(self) -> CameraIntrinsics:
        """The camera's intrinsics scaled to the rendered image (MuJoCo scales its frustum to the viewport)."""
        native = self.camera.intrinsics
        s = self.width / native.width
        return CameraIntrinsics(width=self.width, height=self.height, fx=native.fx * s, fy=native.fy * s,
                                cx=(native.cx + 0.5) * s - 0.5, cy=(native.cy + 0.5) * s - 0.5)

    @property
    def extrinsics(self) -> CameraExtrinsics:
        """The nominal camera pose (each image jitters around it unless camera_shift and camera_tilt_deg are 0)."""
        return self.camera.extrinsics

    def render(self, rng: np.random.Generator, placements: Mapping[str, np.ndarray] | None = None) -> LabelledImage:
        """Randomise the scene, then put the named movable objects at `placements` (centres), render and label."""
        self._randomise_appearance(rng)
        self._place_objects(rng)
        for name, position in (placements or {}).items():
            self.scene.place(self._still, name, np.asarray(position, dtype=float))
        self._place_distractors(rng)
        mujoco.mj_forward(self.model, self.data)
        self._renderer.update_scene(self.data, camera=self._camera_id)
        rgb = self._postprocess(self._renderer.render(), rng)
        self._renderer.enable_segmentation_rendering()
        try:
            segmentation = self._renderer.render()
        finally:
            self._renderer.disable_segmentation_rendering()
        boxes, unlabelled = self._label(segmentation)
        return LabelledImage(rgb=rgb, boxes=boxes, objects=self.scene.object_states(self._still),
                             unlabelled=unlabelled)

    def close(self) -> None:
        """Free the OpenGL context (from the thread that rendered; idempotent)."""
        self._renderer.close()

    def __enter__(self) -> SceneSynthesizer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- set-up -----------------------------------------------------------------------------------

    def _geom_classes(self) -> np.ndarray:
        """Class id of every geom (-1: background), from the task objects' body names."""
        lookup = np.full(self.model.ngeom, -1, dtype=int)
        for name, class_id in self.class_ids.items():
            body = self.model.body(name)
            start = int(self.model.body_geomadr[body.id])
            lookup[start:start + int(self.model.body_geomnum[body.id])] = class_id
        return lookup

    def _footprint_half(self, name: str) -> np.ndarray:
        """Half sizes (x, y) of a body's footprint around its origin (objects stay upright)."""
        body = self.model.body(name)
        start, count = int(self.model.body_geomadr[body.id]), int(self.model.body_geomnum[body.id])
        origin = self.data.body(name).xpos[:2]
        half = np.zeros(2)
        for geom in range(start, start + count):
            rotation = self.data.geom_xmat[geom].reshape(3, 3)
            centre = self.data.geom_xpos[geom] + rotation @ self.model.geom_aabb[geom, :3]
            extent = np.abs(rotation) @ self.model.geom_aabb[geom, 3:]
            half = np.maximum(half, np.abs(centre[:2] - origin) + extent[:2])
        return half

    # -- randomisation ----------------------------------------------------------------------------

    def _randomise_appearance(self, rng: np.random.Generator) -> None:
        r, model, pristine = self.randomisation, self.model, self._pristine
        for name, values in pristine.items():
            getattr(model, name)[:] = values
        for light in range(model.nlight):
            model.light_diffuse[light] *= rng.uniform(*r.light_scale)
            mujoco.mju_rotVecQuat(model.light_dir[light], pristine["light_dir"][light],
                                  _random_rotation(rng, r.light_tilt_deg))
        model.vis.headlight.ambient[:] = self._headlight if r.ambient is None else rng.uniform(*r.ambient)
        for geom in np.flatnonzero(self._geom_class >= 0):
            h, s, v = colorsys.rgb_to_hsv(*pristine["geom_rgba"][geom, :3])
            h = (h + rng.uniform(-r.hue_jitter, r.hue_jitter)) % 1.0
            s = float(np.clip(s * (1.0 + rng.uniform(-r.saturation_jitter, r.saturation_jitter)), 0.0, 1.0))
            v = float(np.clip(v * (1.0 + rng.uniform(-r.value_jitter, r.value_jitter)), 0.05, 1.0))
            model.geom_rgba[geom, :3] = colorsys.hsv_to_rgb(h, s, v)
        if self._ground_material >= 0:
            model.mat_rgba[self._ground_material, :3] *= rng.uniform(1.0 - r.table_tint, 1.0, size=3)
        model.cam_pos[self._camera_id] += rng.uniform(-r.camera_shift, r.camera_shift, size=3)
        mujoco.mju_mulQuat(model.cam_quat[self._camera_id], _random_rotation(rng, r.camera_tilt_deg),
                           pristine["cam_quat"][self._camera_id])

    def _place_objects(self, rng: np.random.Generator) -> None:
        """Task start positions; or, with table_fraction probability, uniform on the table without overlaps."""
        starts = self.scene.reset(self._still, rng)
        if rng.uniform() >= self.randomisation.table_fraction:
            return
        taken = list(self._static)
        for name in self.scene.movable:
            half = self._halves[name]
            for _ in range(PLACEMENT_TRIES):
                xy = self.randomisation.table.sample(rng)
                if not _overlaps(_rect(xy, half), taken):
                    self.scene.place(self._still, name, np.array([xy[0], xy[1], starts[name][2]]))
                    taken.append(_rect(xy, half))
                    break
            else:  # a crowded table: this object keeps its start position
                taken.append(_rect(starts[name], half))

    def _place_distractors(self, rng: np.random.Generator) -> None:
        model, data = self.model, self.data
        mujoco.mj_kinematics(model, data)
        taken = [_rect(data.body(name).xpos, half) for name, half in self._halves.items()]
        shown = rng.choice(DISTRACTOR_POOL, size=rng.integers(0, self.randomisation.distractors + 1), replace=False)
        for k, body in enumerate(self._distractors):
            mocap, geom = int(model.body_mocapid[body.id]), int(model.body_geomadr[body.id])
            data.mocap_pos[mocap] = HIDDEN
            if k not in shown:
                continue
            half = rng.uniform(*DISTRACTOR_HALF_SIZE, size=2)
            height = rng.uniform(*DISTRACTOR_HEIGHT)
            yaw = rng.uniform(0.0, np.pi)
            if model.geom_type[geom] == mujoco.mjtGeom.mjGEOM_BOX:
                model.geom_size[geom] = (half[0], half[1], height / 2)
                footprint = np.abs([[np.cos(yaw), np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]]) @ half
            else:
                model.geom_size[geom] = (half[0], height / 2, 0.0)
                footprint = np.array([half[0], half[0]])
            model.geom_rgba[geom] = (*self._distractor_colour(rng), 1.0)
            for _ in range(PLACEMENT_TRIES):
                xy = self.randomisation.table.sample(rng)
                if not _overlaps(_rect(xy, footprint), taken):
                    data.mocap_pos[mocap] = (xy[0], xy[1], height / 2)
                    data.mocap_quat[mocap] = (np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2))
                    taken.append(_rect(xy, footprint))
                    break

    def _distractor_colour(self, rng: np.random.Generator) -> tuple[float, float, float]:
        """Any colour but a task object's: a hue clear of their jittered hues, unless nearly grey."""
        saturation, value = rng.uniform(0.0, 1.0), rng.uniform(0.15, 1.0)
        while True:
            hue = rng.uniform()
            gap = self.randomisation.hue_jitter + DISTRACTOR_HUE_GAP
            if saturation < 0.25 or all(_hue_distance(hue, h) >= gap for h in self._object_hues):
                return colorsys.hsv_to_rgb(hue, saturation, value)

    def _postprocess(self, rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        r = self.randomisation
        image = rgb.astype(np.float32)
        if rng.uniform() < r.blur_probability:
            sigma = rng.uniform(*r.blur_sigma) * self.width / 640
            image = cv2.GaussianBlur(image, (0, 0), sigma)
        sigma = rng.uniform(0.0, r.noise_sigma)
        if sigma > 0.0:
            image += sigma * rng.standard_normal(size=image.shape, dtype=np.float32)
        return np.clip(np.rint(image), 0, 255).astype(np.uint8)

    # -- labels -----------------------------------------------------------------------------------

    def _label(self, segmentation: np.ndarray) -> tuple[tuple[BoxLabel, ...], tuple[str, ...]]:
        ids, types = segmentation[..., 0], segmentation[..., 1]
        geom = int(mujoco.mjtObj.mjOBJ_GEOM)  # an int: numpy compares a pybind enum element by element, 50x slower
        is_geom = (types == geom) & (ids >= 0)
        classes = np.where(is_geom, self._geom_class[np.where(is_geom, ids, 0)], -1)
        boxes, unlabelled = [], []
        for name, class_id in self.class_ids.items():
            rows, cols = np.nonzero(classes == class_id)
            if len(rows) < self.min_pixels:
                unlabelled.append(name)
                continue
            box = (float(cols.min()), float(rows.min()), float(cols.max() + 1), float(rows.max() + 1))
            boxes.append(BoxLabel(name=name, class_id=class_id, box=box, pixels=len(rows)))
        return tuple(boxes), tuple(unlabelled)


def class_names(tasks: Sequence[str]) -> tuple[str, ...]:
    """One class per distinct object name across `tasks`, in order of first appearance."""
    names: list[str] = []
    for task in tasks:
        names += [name for name in make_franka_scene(task, camera=None).task.object_names if name not in names]
    return tuple(names)


def _split(tasks: Sequence[str], n_images: int, val_fraction: float, seed: int) -> set[int]:
    """Validation image indices: a seeded share of each task's images (image i shows task i mod len(tasks))."""
    rng = np.random.default_rng(seed)
    val: set[int] = set()
    for t in range(len(tasks)):
        indices = np.arange(t, n_images, len(tasks))
        count = int(round(len(indices) * val_fraction))
        if val_fraction > 0.0 and len(indices) > 1:
            count = min(max(count, 1), len(indices) - 1)
        val.update(int(i) for i in rng.permutation(indices)[:count])
    return val


def synthesize(tasks: str | Sequence[str], out_dir: str | Path, n_images: int, seed: int = 0, imgsz: int = 640,
               val_fraction: float = 0.2, randomisation: Randomisation = Randomisation(),
               camera: D435Config = DEFAULT_D435, min_visible_pixels: int = 25, overwrite: bool = False,
               progress: bool = True) -> Path:
    """Render `n_images` labelled images of the task scenes into a YOLO dataset at `out_dir`; return its data.yaml.

    Images cycle through `tasks`; `imgsz` is the rendered width (the height keeps the camera's aspect
    ratio; 640 is the D435's native size).  The folder is built beside `out_dir` and renamed into
    place when complete; an existing `out_dir` is replaced only with `overwrite=True`.  A summary
    (images, boxes per class, hidden objects per class, seed, settings, timing) goes to
    `out_dir/summary.json`.
    """
    tasks = (tasks,) if isinstance(tasks, str) else tuple(tasks)
    out = Path(out_dir).absolute()
    if not tasks:
        raise FarlError("no task to synthesize: give at least one of fragile-push-wall, disturbed-push, bounded-soccer")
    if n_images < 1 or not 0.0 <= val_fraction < 1.0 or imgsz < 32:
        raise FarlError(f"need n_images >= 1, 0 <= val_fraction < 1 and imgsz >= 32 (got {n_images}, "
                        f"{val_fraction}, {imgsz})")
    if out.exists() and not overwrite and not (out.is_dir() and not any(out.iterdir())):
        raise FarlError(f"dataset {out} already exists (choose another output folder, or pass overwrite)")
    randomisation.check()
    names = class_names(tasks)
    width, height = _image_size(camera, imgsz)
    val = _split(tasks, n_images, val_fraction, seed)
    seeds = np.random.SeedSequence(seed).spawn(n_images)
    boxes = dict.fromkeys(names, 0)
    hidden = dict.fromkeys(names, 0)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    started = time.perf_counter()
    try:
        for split in ("train", "val"):
            (staging / "images" / split).mkdir(parents=True)
            (staging / "labels" / split).mkdir(parents=True)
        with tqdm(total=n_images, desc="synthesizing", unit="img", disable=not progress) as bar:
            for t, task in enumerate(tasks):
                with SceneSynthesizer(task, names, imgsz, randomisation, camera, min_visible_pixels) as synth:
                    for i in range(t, n_images, len(tasks)):
                        image = synth.render(np.random.default_rng(seeds[i]))
                        split = "val" if i in val else "train"
                        stem = f"{i:06d}_{task}"
                        cv2.imwrite(str(staging / "images" / split / f"{stem}.jpg"), image.rgb[..., ::-1],
                                    [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
                        lines = [box.yolo_line(width, height) for box in image.boxes]
                        (staging / "labels" / split / f"{stem}.txt").write_text("".join(f"{ln}\n" for ln in lines))
                        for box in image.boxes:
                            boxes[box.name] += 1
                        for name in image.unlabelled:
                            hidden[name] += 1
                        bar.update()
        seconds = time.perf_counter() - started
        data = {"path": str(out), "train": "images/train", "val": "images/val", "names": dict(enumerate(names))}
        (staging / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        summary = {
            "tasks": list(tasks), "names": list(names), "seed": seed,
            "images": {"train": n_images - len(val), "val": len(val), "total": n_images},
            "boxes_per_class": boxes, "hidden_per_class": hidden,
            "image_size": [width, height], "val_fraction": val_fraction,
            "min_visible_pixels": {"at_640x480": min_visible_pixels,
                                   "applied": _min_pixels(min_visible_pixels, width, height)},
            "randomisation": asdict(randomisation), "camera": asdict(camera),
            "seconds": round(seconds, 3), "seconds_per_image": round(seconds / n_images, 4),
            "mujoco": mujoco.__version__,
        }
        (staging / "summary.json").write_text(json.dumps(summary, indent=2))
        replace_folder(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out / "data.yaml"
