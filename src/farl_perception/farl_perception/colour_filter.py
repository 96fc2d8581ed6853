"""The colour detector: HSV thresholds -> morphology -> the largest blob per object.

HSV because an object's paint keeps its hue and saturation across the shading of its lit and
unlit faces, where RGB thresholds would need one box per face.  The opening removes specks
(sensor noise, anti-aliased edges of other objects); the closing fills holes that specular
highlights punch into a mask.  Each task object is one physical instance, so the largest
connected blob is taken as the object and smaller same-coloured blobs as clutter.

Score: how much evidence the blob is, min(1, area / full_score_area).  A blob barely above
min_area could be clutter that survived the opening; one of full_score_area pixels (a few
hundred: well below what a task object covers at the working distance) is certain.  It is not
a calibrated probability; the tracker uses it as the estimate's confidence.
"""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np

from farl_perception.config import ColourFilterConfig, ColourRange
from farl_perception.objects import Detection, DetectionSource

Box = tuple[float, float, float, float]


def hsv_image(rgb: np.ndarray) -> np.ndarray:
    """OpenCV HSV (hue 0-179) of an RGB uint8 image."""
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)


def in_range(hsv: np.ndarray, colour: ColourRange) -> np.ndarray:
    """uint8 mask (255 = inside) of the pixels in `colour`, wrapping the hue for reds."""
    lower, upper = np.array(colour.lower, dtype=np.uint8), np.array(colour.upper, dtype=np.uint8)
    if not colour.wraps:
        return cv2.inRange(hsv, lower, upper)
    high_hues = cv2.inRange(hsv, lower, np.array((179, *colour.upper[1:]), dtype=np.uint8))
    low_hues = cv2.inRange(hsv, np.array((0, *colour.lower[1:]), dtype=np.uint8), upper)
    return cv2.bitwise_or(high_hues, low_hues)


def box_mask(shape: tuple[int, int], box: Box) -> np.ndarray:
    """uint8 mask (255 = inside) of the pixels whose centres lie in `box` (x0, y0, x1, y1)."""
    mask = np.zeros(shape, dtype=np.uint8)
    x0, y0 = max(int(np.ceil(box[0])), 0), max(int(np.ceil(box[1])), 0)
    x1, y1 = min(int(np.floor(box[2])), shape[1] - 1), min(int(np.floor(box[3])), shape[0] - 1)
    mask[y0:y1 + 1, x0:x1 + 1] = 255
    return mask


class ColourFilter:
    """Finds each configured object as its largest HSV blob."""

    def __init__(self, config: ColourFilterConfig) -> None:
        self._config = config
        self._kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (config.kernel_size, config.kernel_size))

    @property
    def names(self) -> tuple[str, ...]:
        """The objects this filter can find."""
        return tuple(self._config.ranges)

    def detect(self, rgb: np.ndarray, regions: Mapping[str, Box | None] | None = None) -> dict[str, Detection]:
        """Detections of the configured objects in an RGB image.

        regions: if given, look only for these objects, each only inside its box (None: anywhere);
        how a box detector's result narrows the search (fusion.py).  Default: every object, anywhere.
        """
        hsv = hsv_image(rgb)
        ranges = self._config.ranges
        if regions is None:
            regions = dict.fromkeys(ranges)
        detections = {}
        for name, box in regions.items():
            if name not in ranges:
                continue
            mask = self._clean(in_range(hsv, ranges[name]))
            if box is not None:
                mask = cv2.bitwise_and(mask, box_mask(mask.shape, box))
            detection = self._largest_blob(name, mask)
            if detection is not None:
                detections[name] = detection
        return detections

    def _clean(self, mask: np.ndarray) -> np.ndarray:
        opened = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self._kernel)
        return cv2.morphologyEx(opened, cv2.MORPH_CLOSE, self._kernel)

    def _largest_blob(self, name: str, mask: np.ndarray) -> Detection | None:
        count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        if count < 2:  # label 0 is the background
            return None
        label = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        x, y, w, h, area = (int(v) for v in stats[label])
        if area < self._config.min_area:
            return None
        score = min(1.0, area / self._config.full_score_area)
        return Detection(name=name, score=score, source=DetectionSource.COLOUR,
                         box=(float(x), float(y), float(x + w - 1), float(y + h - 1)), mask=labels == label)
