"""The HSV colour filter on synthetic images (rendered scenes: test_pipeline.py)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from farl_core.config import from_mapping
from farl_core.errors import ConfigError
from farl_perception.colour_filter import ColourFilter, in_range
from farl_perception.config import ColourFilterConfig, ColourRange, default_colour_ranges

RED = ColourRange((170, 100, 40), (8, 255, 255))
BLUE_FLOOR = (105, 146, 160)


def _image(*discs: tuple[tuple[int, int], int, tuple[int, int, int]], size=(240, 320)) -> np.ndarray:
    """An RGB image of the blue floor with filled discs ((u, v), radius, HSV colour)."""
    hsv = np.zeros((*size, 3), dtype=np.uint8)
    hsv[:] = BLUE_FLOOR
    for centre, radius, colour in discs:
        cv2.circle(hsv, centre, radius, colour, thickness=-1)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def test_red_hue_wraps_around_zero() -> None:
    assert RED.wraps and not ColourRange((8, 80, 40), (22, 255, 255)).wraps
    image = _image(((100, 120), 30, (177, 230, 200)))
    cv2.circle(image, (100, 120), 15, cv2.cvtColor(np.uint8([[[3, 230, 200]]]), cv2.COLOR_HSV2RGB)[0, 0].tolist(), -1)
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    assert set(np.unique(hsv[..., 0][in_range(hsv, RED) > 0])) >= {3, 177}  # both ends of the hue circle
    detection = ColourFilter(ColourFilterConfig(ranges={"object": RED})).detect(image)["object"]
    assert detection.mask.sum() == pytest.approx(np.pi * 30 ** 2, rel=0.05)   # one blob: both hues
    low_end_only = ColourFilter(ColourFilterConfig(ranges={"object": ColourRange((0, 100, 40), (8, 255, 255))}))
    assert low_end_only.detect(image)["object"].mask.sum() == pytest.approx(np.pi * 15 ** 2, rel=0.1)


def test_largest_blob_wins_and_specks_are_opened_away() -> None:
    image = _image(((80, 100), 25, (0, 230, 200)), ((250, 60), 8, (0, 230, 200)))
    rng = np.random.default_rng(0)
    specks = rng.integers(0, (240, 320), size=(150, 2))
    image[specks[:, 0], specks[:, 1]] = (230, 20, 20)             # isolated red pixels: sensor noise
    detection = ColourFilter(ColourFilterConfig(ranges={"object": RED}, kernel_size=5)).detect(image)["object"]
    truth = np.zeros((240, 320), dtype=np.uint8)
    cv2.circle(truth, (80, 100), 25, 1, thickness=-1)
    overlap = (detection.mask & truth.astype(bool)).sum() / (detection.mask | truth.astype(bool)).sum()
    assert overlap > 0.95
    assert detection.box == pytest.approx((55, 75, 105, 125), abs=1.5)
    assert detection.score == 1.0 and detection.source.value == "colour"


def test_small_blobs_are_no_detection_and_score_grows_with_area() -> None:
    config = ColourFilterConfig(ranges={"object": RED}, min_area=100, full_score_area=1000)
    assert ColourFilter(config).detect(_image(((100, 100), 4, (0, 230, 200)))) == {}
    medium = ColourFilter(config).detect(_image(((100, 100), 10, (0, 230, 200))))["object"]
    assert medium.score == pytest.approx(medium.mask.sum() / 1000)
    assert 0.1 < medium.score < 1.0


def test_regions_restrict_the_search() -> None:
    image = _image(((60, 60), 20, (0, 230, 200)), ((240, 160), 12, (0, 230, 200)))
    colour = ColourFilter(ColourFilterConfig(ranges={"object": RED}))
    inside = colour.detect(image, {"object": (200.0, 120.0, 300.0, 200.0)})["object"]
    assert inside.box == pytest.approx((228, 148, 252, 172), abs=1.5)    # the small blob, in the box
    assert colour.detect(image, {"object": (150.0, 10.0, 200.0, 50.0)}) == {}
    assert colour.detect(image, {"ball": None}) == {}                     # no range for it


def test_each_task_has_one_range_per_object_and_they_do_not_overlap() -> None:
    for task in ("fragile-push-wall", "disturbed-push", "bounded-soccer"):
        ranges = default_colour_ranges(task).values()
        hues = [set(range(r.lower[0], 180)) | set(range(0, r.upper[0] + 1)) if r.wraps
                else set(range(r.lower[0], r.upper[0] + 1)) for r in ranges]
        assert all(not (a & b) for i, a in enumerate(hues) for b in hues[i + 1:]), task


def test_colour_ranges_are_validated_on_load() -> None:
    good = from_mapping(ColourFilterConfig, {"ranges": {"object": {"lower": [170, 100, 40], "upper": [8, 255, 255]}},
                                             "kernel_size": 3}, where="colour")
    assert good.ranges == {"object": RED} and good.kernel_size == 3
    with pytest.raises(ConfigError, match=r"colour\.ranges\.cup: colour range upper .* outside OpenCV's HSV"):
        from_mapping(ColourFilterConfig, {"ranges": {"cup": {"lower": [0, 0, 0], "upper": [200, 255, 255]}}},
                     where="colour")
    with pytest.raises(ConfigError, match="only hue may wrap"):
        from_mapping(ColourRange, {"lower": [0, 200, 0], "upper": [10, 100, 255]}, where="r")
    with pytest.raises(ConfigError, match="kernel_size must be odd"):
        from_mapping(ColourFilterConfig, {"kernel_size": 4}, where="colour")
