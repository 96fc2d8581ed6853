"""The Perception component: one camera frame in, the task's object states out, once per step.

    config = replace(perception_config(task.name, path), extrinsics=...)   # or calibration_file
    perception = Perception(config, source, task.object_names)
    objects = perception.step()            # ObjectArray, base frame, every requested object

`farl perception run`, the synchronous runner and the ROS node (a thin adapter) all drive this
class; it holds no rclpy and opens no windows.  step() = read the newest frame, detect
(fusion.py), localise each detection (localization.py), filter over time (tracker.py).

A stalled camera (the source raises CameraStalled) is not an exception of step(): the component
keeps answering on its 5 Hz tick, but with every object stale (positions held, confidence
decaying, zero velocity), the last frame's stamp, and `status` STALLED with the source's message.
Repeating the last positions as fresh would let the policy and the safety shield act on a world
that may have changed; raising would stop the node's timer instead of telling its consumers.
The ROS node and the CLI show `status.message`.

Latency for benchmarks: `last.timing` splits each step into the time blocked on the camera
(grab) and the time spent on the frame (detect, localise, track).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

import cv2
import numpy as np

from farl_core.camera_model import RGBDFrame
from farl_core.errors import ConfigError
from farl_perception.camera_source import CameraSource, CameraStalled
from farl_perception.colour_filter import ColourFilter
from farl_perception.config import PerceptionConfig
from farl_perception.fusion import ObjectDetector
from farl_perception.localization import Localizer, Measurement
from farl_perception.objects import Detection, ObjectArray, ObjectEstimate
from farl_perception.tracker import Tracker
from farl_perception.yolo_detector import YoloDetector

log = logging.getLogger(__name__)


class PerceptionState(str, Enum):
    STARTING = "starting"      # no step yet
    OK = "ok"                  # the last step processed a new frame
    STALLED = "stalled"        # the last step got no frame: every object is stale


@dataclass(frozen=True)
class PerceptionStatus:
    state: PerceptionState
    message: str = ""


@dataclass(frozen=True)
class StepTiming:
    """Seconds of one step, wall clock (time.perf_counter)."""

    grab_s: float              # blocked in source.read (waiting for and receiving the frame)
    detect_s: float = 0.0
    localize_s: float = 0.0
    track_s: float = 0.0

    @property
    def processing_s(self) -> float:
        """Time spent on the frame once it was there: what perception adds to the camera's latency."""
        return self.detect_s + self.localize_s + self.track_s


@dataclass(frozen=True)
class StepReport:
    """What one step saw, for live views, saved frames and benchmarks (`Perception.last`)."""

    frame: RGBDFrame | None                    # None when the camera stalled
    detections: Mapping[str, Detection]
    measurements: Mapping[str, Measurement]    # this frame's un-filtered centres
    objects: ObjectArray                       # what step() returned (tracked)
    timing: StepTiming


class Perception:
    """Camera source -> detector -> localizer -> tracker, for the objects named at construction."""

    def __init__(self, config: PerceptionConfig, source: CameraSource, objects: tuple[str, ...]) -> None:
        colour = ColourFilter(config.colour) if config.colour.ranges else None
        yolo = YoloDetector(config.yolo, objects) if config.yolo.enabled else None
        self._detector = ObjectDetector(colour, yolo)
        unseen = [n for n in objects if n not in self._detector.names]
        if unseen:
            raise ConfigError(f"perception cannot detect {', '.join(unseen)}: add a colour range "
                              "(colour.ranges) or a YOLO class (yolo.class_names) for it")
        shapeless = [n for n in objects if n not in config.localization.objects]
        if shapeless:
            raise ConfigError(f"perception has no shape for {', '.join(shapeless)}: add it to "
                              "localization.objects (sphere radius or upright height)")
        self._config = config
        self._source = source
        self._objects = objects
        self._localizer = Localizer(config.localization, config.camera_extrinsics())
        self._tracker = Tracker(config.tracker, objects, self._detector.source)
        self._status = PerceptionStatus(PerceptionState.STARTING, "no frame read yet")
        self._last: StepReport | None = None
        self._stamp = 0.0

    @property
    def config(self) -> PerceptionConfig:
        return self._config

    @property
    def objects(self) -> tuple[str, ...]:
        return self._objects

    @property
    def status(self) -> PerceptionStatus:
        return self._status

    @property
    def last(self) -> StepReport | None:
        """The latest step's frame, detections, measurements and timing (None before the first step)."""
        return self._last

    def step(self) -> ObjectArray:
        """Read one frame, detect, localise and track; every requested object, stale where not seen."""
        start = time.perf_counter()
        try:
            frame = self._source.read(self._config.read_timeout_s)
        except CameraStalled as exc:
            if self._status.state is not PerceptionState.STALLED:
                log.warning("camera stalled: %s", exc)
            self._status = PerceptionStatus(PerceptionState.STALLED, str(exc))
            objects = ObjectArray(self._stamp, self._tracker.update(self._stamp, {}))
            self._last = StepReport(None, {}, {}, objects, StepTiming(grab_s=time.perf_counter() - start))
            return objects
        grabbed = time.perf_counter()
        detections = {n: d for n, d in self._detector.detect(frame.rgb).items() if n in self._objects}
        detected = time.perf_counter()
        measurements = {}
        for name, detection in detections.items():
            measurement = self._localizer.locate(detection, frame)
            if measurement is not None:
                measurements[name] = measurement
        localized = time.perf_counter()
        self._stamp = frame.time
        objects = ObjectArray(frame.time, self._tracker.update(frame.time, measurements))
        tracked = time.perf_counter()
        if self._status.state is not PerceptionState.OK:
            log.info("camera delivering frames")
        self._status = PerceptionStatus(PerceptionState.OK)
        timing = StepTiming(grab_s=grabbed - start, detect_s=detected - grabbed, localize_s=localized - detected,
                            track_s=tracked - localized)
        self._last = StepReport(frame, detections, measurements, objects, timing)
        return objects


_PALETTE = ((230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
            (70, 240, 240), (240, 50, 230))
"""Distinct RGB label colours (cycled by object order)."""


def annotate(frame: RGBDFrame, detections: Mapping[str, Detection],
             estimates: ObjectArray | Sequence[ObjectEstimate]) -> np.ndarray:
    """An RGB copy of the frame with masks tinted, boxes, labels (name, score) and each estimate's state.

    Each detection gets its box and a label; below the box, the tracked position (base frame, m)
    of that object.  A panel in the top-left corner lists every estimate, stale ones marked.
    """
    objects = estimates.objects if isinstance(estimates, ObjectArray) else tuple(estimates)
    names = sorted({*detections, *(o.name for o in objects)})
    colours = {name: _PALETTE[i % len(_PALETTE)] for i, name in enumerate(names)}
    by_name = {o.name: o for o in objects}
    image = np.ascontiguousarray(frame.rgb.copy())
    for name, detection in detections.items():
        colour = colours[name]
        if detection.mask is not None:
            image[detection.mask] = (0.6 * image[detection.mask] + 0.4 * np.array(colour)).astype(np.uint8)
        if detection.box is None:
            continue
        x0, y0, x1, y1 = (int(round(v)) for v in detection.box)
        cv2.rectangle(image, (x0, y0), (x1, y1), colour, 2)
        _text(image, f"{name} {detection.score:.2f}", (x0, max(y0 - 6, 12)), colour)
        estimate = by_name.get(name)
        if estimate is not None and np.all(np.isfinite(estimate.position)):
            _text(image, "({:.3f}, {:.3f}, {:.3f})".format(*estimate.position), (x0, y1 + 16), colour)
    for row, estimate in enumerate(objects):
        state = "STALE" if estimate.stale else "ok"
        position = ("{:+.3f} {:+.3f} {:+.3f}".format(*estimate.position)
                    if np.all(np.isfinite(estimate.position)) else "never seen")
        _text(image, f"{estimate.name}: {position} m  conf {estimate.confidence:.2f} {state}", (8, 18 + 18 * row),
              colours[estimate.name])
    return image


def _text(image: np.ndarray, text: str, origin: tuple[int, int], colour: tuple[int, int, int]) -> None:
    """Label text on a dark box, readable on any background.

    (Not a thick dark pass under a thin one: OpenCV 5 lays out thick text differently, and the two
    passes did not line up.)
    """
    (width, height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
    x, y = origin
    cv2.rectangle(image, (x - 2, y - height - 3), (x + width + 2, y + baseline), (0, 0, 0), cv2.FILLED)
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv2.LINE_AA)
