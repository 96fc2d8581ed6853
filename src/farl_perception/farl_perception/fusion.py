"""Which detector decides: the colour filter, YOLO, or both together.

Alone, each works as it is.  Together they play to their strengths: YOLO decides whether and
where an object is (it tells a red cup from a red sleeve or a red cable, which a colour filter
cannot), the colour mask gives the exact pixels whose depth is sampled (a box also holds table
and wall pixels; a 320-px YOLO mask is coarse at the object's edge).  The rule, per object:

- YOLO has a box: the colour filter looks for the object inside that box only; its blob becomes
  the mask of a FUSED detection with YOLO's box and score.  No colour pixels in the box (lighting
  changed, or the object has no colour range): YOLO's own detection is used as it is.
- YOLO has no box: no detection, even if the colour filter would find a blob elsewhere (YOLO
  was configured precisely to veto look-alikes; the tracker reports the object stale).
- Objects YOLO was not trained on are found by the colour filter alone.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from farl_core.errors import ConfigError
from farl_perception.colour_filter import Box, ColourFilter
from farl_perception.objects import Detection, DetectionSource


class BoxDetector(Protocol):
    """A learned detector (yolo_detector.YoloDetector): at most one detection per object, each with a box."""

    @property
    def names(self) -> tuple[str, ...]: ...

    def detect(self, rgb: np.ndarray) -> dict[str, Detection]: ...


class ObjectDetector:
    """The configured detectors behind one `detect(rgb)`."""

    def __init__(self, colour: ColourFilter | None = None, yolo: BoxDetector | None = None) -> None:
        if colour is None and yolo is None:
            raise ConfigError("perception has no detector: configure colour.ranges and/or yolo.weights")
        self._colour = colour
        self._yolo = yolo

    @property
    def names(self) -> tuple[str, ...]:
        """The objects some configured detector can find."""
        found = set(self._colour.names if self._colour else ()) | set(self._yolo.names if self._yolo else ())
        return tuple(sorted(found))

    @property
    def source(self) -> DetectionSource:
        """What the detections come from (fused when both detectors are configured)."""
        if self._colour is not None and self._yolo is not None:
            return DetectionSource.FUSED
        return DetectionSource.COLOUR if self._colour is not None else DetectionSource.YOLO

    def detect(self, rgb: np.ndarray) -> dict[str, Detection]:
        """This frame's detections, at most one per object."""
        if self._yolo is None:
            assert self._colour is not None
            return self._colour.detect(rgb)
        boxed = self._yolo.detect(rgb)
        if self._colour is None:
            return boxed
        regions: dict[str, Box | None] = {name: d.box for name, d in boxed.items() if d.box is not None}
        regions.update({name: None for name in self._colour.names if name not in self._yolo.names})
        found = self._colour.detect(rgb, regions)
        detections = {name: d for name, d in found.items() if name not in boxed}
        for name, detection in boxed.items():
            blob = found.get(name)
            detections[name] = detection if blob is None else Detection(
                name=name, score=detection.score, source=DetectionSource.FUSED, box=detection.box, mask=blob.mask)
        return detections
