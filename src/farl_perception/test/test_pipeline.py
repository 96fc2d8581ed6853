"""Perception end to end on the rendered Franka scenes (needs MUJOCO_GL=egl), and its configuration.

Frames come from the simulated D435 with realistic depth noise (sigma = 0.005 z^2, seeded); truth
is the simulator's object centres.  One franky-sim per scene, shared by that scene's tests (the
scenes run one after another, see farl_sim's test_franka_scenes.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from farl_control.embedded_sim import EmbeddedFrankaSim
from farl_core.camera_model import CameraExtrinsics, CameraIntrinsics, RGBDFrame
from farl_core.errors import ConfigError, FarlError
from farl_core.franka_tasks import FragilePushWallGeometry
from farl_core.table_geometry import TableRect
from farl_perception.calibration import CalibrationResult, save_calibration
from farl_perception.camera_source import CameraSource, CameraStalled
from farl_perception.config import (
    ColourRange,
    ObjectModel,
    YoloConfig,
    perception_config,
    task_defaults,
)
from farl_perception.pipeline import Perception, PerceptionState, annotate
from farl_sim.franka_scenes import FrankaScene, SimulatedD435, make_franka_scene

SCENES = ("fragile-push-wall", "disturbed-push", "bounded-soccer")
WORKSPACE = TableRect(0.36, 0.73, -0.20, 0.20)   # the tasks' workspace, less a margin for the object sizes
OUT_OF_VIEW_XY = (0.45, 0.90)                    # on the floor, right of the camera's field of view
D435_NOISE = 0.005                                # 1/m: the simulated D435's realistic setting
PLACEMENTS = 5                                    # frames per scene in the accuracy test
FOOTPRINT = {"object": "object_radius", "obstacle": "obstacle_radius", "ball": "ball_radius"}


class RenderedSource:
    """CameraSource over the simulated D435; `stalled` makes it stop delivering."""

    def __init__(self, camera: SimulatedD435) -> None:
        self._camera = camera
        self.stalled = False

    @property
    def intrinsics(self) -> CameraIntrinsics:
        return self._camera.intrinsics

    def read(self, timeout_s: float = 1.0) -> RGBDFrame:
        if self.stalled:
            raise CameraStalled(f"no new frame from the simulated D435 for {timeout_s:.1f} s (test)")
        return self._camera.capture()

    def close(self) -> None:
        """The camera belongs to the fixture."""


@dataclasses.dataclass
class Running:
    scene: FrankaScene
    sim: EmbeddedFrankaSim
    camera: SimulatedD435
    source: RenderedSource

    def perception(self) -> Perception:
        """A fresh component (no track history) on this scene's camera."""
        config = dataclasses.replace(task_defaults(self.scene.task.name), extrinsics=self.scene.camera.extrinsics)
        return Perception(config, self.source, self.scene.task.object_names)

    def truth(self) -> dict[str, np.ndarray]:
        return self.scene.object_states(self.sim)


@pytest.fixture(scope="module", params=SCENES)
def running(request: pytest.FixtureRequest) -> Iterator[Running]:
    scene = make_franka_scene(request.param)
    with EmbeddedFrankaSim(scene=scene.build, realtime=True) as sim:
        with SimulatedD435(sim, dataclasses.replace(scene.camera, depth_noise=D435_NOISE)) as camera:
            scene.reset(sim, np.random.default_rng(0))
            yield Running(scene, sim, camera, RenderedSource(camera))


def in_scene(name: str) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("running", [name], indirect=True)


def _place_randomly(running: Running, rng: np.random.Generator) -> None:
    """Put every movable object somewhere in the workspace, clear of the others (and of the wall)."""
    scene, geometry = running.scene, running.scene.task.geometry
    resting = running.truth()
    placed: list[tuple[np.ndarray, float]] = []
    for name in scene.movable:
        radius = float(getattr(geometry, FOOTPRINT[name]))
        while True:
            position = np.array([*WORKSPACE.sample(rng), resting[name][2]])
            clear = all(np.linalg.norm(position[:2] - p[:2]) > radius + r + 0.03 for p, r in placed)
            if isinstance(geometry, FragilePushWallGeometry):
                clear = clear and geometry.wall_gap(position) > 0.01
            if clear:
                break
        scene.place(running.sim, name, position)
        placed.append((position, radius))


def test_colour_path_accuracy(running: Running, record_property: pytest.RecordProperty) -> None:
    """Median error <= 1 cm, 95th percentile <= 2.5 cm against the simulator's object centres."""
    perception = running.perception()
    rng = np.random.default_rng(SCENES.index(running.scene.task.name))
    errors = []
    for _ in range(PLACEMENTS):
        _place_randomly(running, rng)
        perception.step()
        report, truth = perception.last, running.truth()
        assert report is not None
        for name in running.scene.task.object_names:
            assert name in report.measurements, f"{name} not localised"
            errors.append(float(np.linalg.norm(report.measurements[name].position - truth[name])))
    median, p95 = np.median(errors), np.percentile(errors, 95)
    record_property("median_error_m", float(median))
    record_property("p95_error_m", float(p95))
    print(f"{running.scene.task.name}: {len(errors)} estimates, median {median * 1000:.1f} mm, "
          f"p95 {p95 * 1000:.1f} mm, max {max(errors) * 1000:.1f} mm")
    assert median <= 0.01 and p95 <= 0.025


def test_object_out_of_view_turns_stale_and_is_reacquired(running: Running) -> None:
    scene, perception = running.scene, running.perception()
    name = scene.task.pushed
    _place_randomly(running, np.random.default_rng(7))
    seen, before = perception.step(), running.truth()
    assert not any(o.stale for o in seen.objects)
    hidden = np.array([*OUT_OF_VIEW_XY, before[name][2]])
    u, v = running.camera.project(hidden)
    assert not (0 <= u < 640 and 0 <= v < 480)
    scene.place(running.sim, name, hidden)
    gone = perception.step()
    lost = gone.get(name)
    assert lost is not None and lost.stale                                  # in the first frame already
    np.testing.assert_array_equal(lost.position, seen.get(name).position)  # held where it was seen
    assert lost.confidence < seen.get(name).confidence
    assert all(not o.stale for o in gone.objects if o.name != name)
    scene.place(running.sim, name, before[name])                              # back where it was
    found = perception.step().get(name)
    assert found is not None and not found.stale
    assert np.linalg.norm(found.position - running.truth()[name]) < 0.01


@in_scene("bounded-soccer")
def test_stalled_camera_reports_stale_objects_and_the_error(running: Running) -> None:
    perception = running.perception()
    assert perception.status.state is PerceptionState.STARTING
    fresh = perception.step()
    assert perception.status.state is PerceptionState.OK
    running.source.stalled = True
    try:
        for _ in range(2):
            stalled = perception.step()
            assert perception.status.state is PerceptionState.STALLED
            assert "no new frame" in perception.status.message
            assert stalled.stamp == fresh.stamp                    # nothing newer was seen
            assert perception.last is not None and perception.last.frame is None
            for before, now in zip(fresh.objects, stalled.objects, strict=True):
                assert now.stale and now.confidence < before.confidence
                np.testing.assert_array_equal(now.position, before.position)
    finally:
        running.source.stalled = False
    recovered = perception.step()
    assert perception.status.state is PerceptionState.OK and not any(o.stale for o in recovered.objects)


@in_scene("disturbed-push")
def test_latency_and_annotation(running: Running) -> None:
    perception = running.perception()
    objects = perception.step()
    report = perception.last
    assert report is not None and report.frame is not None and report.objects is objects
    timing = report.timing
    assert timing.grab_s > 0.0 and timing.detect_s > 0.0 and timing.localize_s > 0.0
    assert timing.processing_s == pytest.approx(timing.detect_s + timing.localize_s + timing.track_s)
    original = report.frame.rgb.copy()
    image = annotate(report.frame, report.detections, objects)
    assert image.shape == original.shape and image.dtype == np.uint8
    np.testing.assert_array_equal(report.frame.rgb, original)            # drawn on a copy
    x0, y0, x1, y1 = (int(v) for v in report.detections["object"].box)
    assert np.any(image[y0:y1 + 1, x0:x1 + 1] != original[y0:y1 + 1, x0:x1 + 1])


# -- configuration (no simulator) ---------------------------------------------------------------

class _NoFrames:
    intrinsics = CameraIntrinsics()

    def read(self, timeout_s: float = 1.0) -> RGBDFrame:
        raise CameraStalled("no frames")

    def close(self) -> None:
        pass


def test_stand_in_sources_satisfy_the_protocol() -> None:
    assert isinstance(_NoFrames(), CameraSource)


def test_config_file_overlays_the_task_defaults(tmp_path: Path) -> None:
    path = tmp_path / "farl.yaml"
    path.write_text("""
farl_bridge:
  ros__parameters: {robot: sim}
farl_perception:
  ros__parameters:
    calibration_file: /etc/farl/camera.json
    colour:
      ranges:
        object: {lower: [172, 90, 30]}
      min_area: 80
    yolo: {class_names: {cup: object}, imgsz: 416}
    localization:
      objects:
        object: {height: 0.065}
    tracker: {alpha: 0.6}
""")
    defaults = task_defaults("fragile-push-wall")
    config = perception_config("fragile-push-wall", path)
    assert config.colour.ranges["object"] == ColourRange((172, 90, 30), defaults.colour.ranges["object"].upper)
    assert config.colour.ranges["wall"] == defaults.colour.ranges["wall"] and config.colour.min_area == 80
    assert config.localization.objects["object"] == ObjectModel("upright", height=0.065)
    assert config.yolo.class_names == {"cup": "object"} and config.yolo.imgsz == 416 and not config.yolo.enabled
    assert config.tracker.alpha == 0.6 and config.rate_hz == 5.0
    assert config.calibration_file == "/etc/farl/camera.json" and config.extrinsics is None
    assert perception_config("fragile-push-wall", None) == defaults
    path.write_text("farl_perception:\n  ros__parameters:\n    colour: {ranges: {object: {lower: [1, 2]}}}\n")
    with pytest.raises(ConfigError, match=r"farl_perception\.colour\.ranges\.object\.lower: expected a list of 3"):
        perception_config("fragile-push-wall", path)


def test_camera_pose_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no camera pose"):
        Perception(task_defaults("bounded-soccer"), _NoFrames(), ("ball",))
    pose = np.eye(4)
    pose[:3, 3] = (1.0, 0.1, 0.8)
    calibrated = CalibrationResult(camera_to_base=pose, mode="points", intrinsics=CameraIntrinsics(),
                                   reprojection_rms_px=0.3, rms_mm=None, n_views=1, n_points=6,
                                   timestamp="2026-01-01T00:00:00+00:00")
    path = save_calibration(calibrated, tmp_path / "calibration.json")
    config = dataclasses.replace(task_defaults("bounded-soccer"), calibration_file=str(path))
    assert config.camera_extrinsics().position == (1.0, 0.1, 0.8)
    with pytest.raises(FarlError, match="not found"):
        dataclasses.replace(config, calibration_file=str(tmp_path / "none.json")).camera_extrinsics()
    with pytest.raises(ValueError, match="keep one of them"):
        dataclasses.replace(config, extrinsics=make_franka_scene("bounded-soccer").camera.extrinsics)
    skewed = CameraExtrinsics(position=(1.0, 0.0, 0.8), rotation=((1.0, 0.1, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)))
    with pytest.raises(ConfigError, match="not a rotation matrix"):
        dataclasses.replace(task_defaults("bounded-soccer"), extrinsics=skewed)


def test_objects_perception_cannot_see_are_config_errors(tmp_path: Path) -> None:
    config = dataclasses.replace(task_defaults("bounded-soccer"),
                                 extrinsics=make_franka_scene("bounded-soccer").camera.extrinsics)
    with pytest.raises(ConfigError, match="cannot detect wall"):
        Perception(config, _NoFrames(), ("ball", "wall"))
    shapeless = dataclasses.replace(config, localization=dataclasses.replace(config.localization, objects={}))
    with pytest.raises(ConfigError, match="no shape for ball"):
        Perception(shapeless, _NoFrames(), ("ball",))
    missing = dataclasses.replace(config, yolo=YoloConfig(weights=str(tmp_path / "best.pt")))
    with pytest.raises(FarlError, match="farl perception train-detector"):
        Perception(missing, _NoFrames(), ("ball",))
