"""Localization on analytically ray-cast depth: exact centres, and robustness to what real depth does wrong.

The frames come from intersecting each pixel's ray with a table plane and one object (a sphere or
an upright cylinder), with the D435 intrinsics and the simulated camera's mount, so the true
centre is known exactly and no renderer is needed.
"""

from __future__ import annotations

import numpy as np
import pytest

from farl_core.camera_model import CameraExtrinsics, CameraIntrinsics, RGBDFrame
from farl_perception.config import LocalizationConfig, ObjectModel
from farl_perception.localization import Localizer, sphere_centre, upright_centre
from farl_perception.objects import Detection, DetectionSource

INTRINSICS = CameraIntrinsics()
MOUNT = CameraExtrinsics.look_at(position=(1.05, 0.0, 0.80), target=(0.52, 0.0, 0.0))
BALL = ObjectModel("sphere", radius=0.033)
CUP = ObjectModel("upright", height=0.06)
CUP_RADIUS = 0.03
CONFIG = LocalizationConfig(objects={"ball": BALL, "cup": CUP})


def _rays() -> tuple[np.ndarray, np.ndarray]:
    """Camera centre and unit ray direction (H, W, 3) of every pixel, base frame."""
    v, u = np.mgrid[0:INTRINSICS.height, 0:INTRINSICS.width]
    directions = MOUNT.to_base(INTRINSICS.deproject(u, v, 1.0)) - np.asarray(MOUNT.position)
    return np.asarray(MOUNT.position), directions / np.linalg.norm(directions, axis=-1, keepdims=True)


def _sphere_hits(origin: np.ndarray, rays: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    offset = origin - centre
    b = rays @ offset
    disc = b ** 2 - (offset @ offset - radius ** 2)
    return np.where(disc >= 0.0, -b - np.sqrt(np.maximum(disc, 0.0)), np.inf)


def _cylinder_hits(origin: np.ndarray, rays: np.ndarray, centre: np.ndarray, radius: float,
                   height: float) -> np.ndarray:
    bottom, top = centre[2] - height / 2.0, centre[2] + height / 2.0
    t_cap = (top - origin[2]) / rays[..., 2]
    cap_xy = origin[:2] + t_cap[..., None] * rays[..., :2]
    cap = np.where(np.linalg.norm(cap_xy - centre[:2], axis=-1) <= radius, t_cap, np.inf)
    d, o = rays[..., :2], origin[:2] - centre[:2]
    a, b, c = (d ** 2).sum(-1), (d * o).sum(-1), o @ o - radius ** 2
    disc = b ** 2 - a * c
    t_side = np.where(disc >= 0.0, (-b - np.sqrt(np.maximum(disc, 0.0))) / a, np.inf)
    z_side = origin[2] + t_side * rays[..., 2]
    side = np.where((z_side >= bottom) & (z_side <= top), t_side, np.inf)
    return np.minimum(cap, side)


def _frame(model: ObjectModel, centre: np.ndarray) -> tuple[RGBDFrame, np.ndarray]:
    """Depth of the table plus one object, and the object's pixel mask."""
    origin, rays = _rays()
    table = -origin[2] / rays[..., 2]
    if model.shape == "sphere":
        hits = _sphere_hits(origin, rays, centre, model.radius)
    else:
        hits = _cylinder_hits(origin, rays, centre, CUP_RADIUS, model.height)
    mask = hits < table
    distance = np.where(mask, hits, table)
    optical_axis = np.asarray(MOUNT.rotation)[:, 2]
    depth_mm = np.rint(distance * (rays @ optical_axis) * 1000.0).astype(np.uint16)
    rgb = np.zeros((*depth_mm.shape, 3), dtype=np.uint8)
    return RGBDFrame(rgb=rgb, depth_mm=depth_mm, time=0.0, intrinsics=INTRINSICS), mask


def _locate(model: ObjectModel, centre: np.ndarray, corrupt=None, mask_only=None, box_only=False) -> np.ndarray:
    frame, mask = _frame(model, centre)
    if corrupt is not None:
        frame = RGBDFrame(rgb=frame.rgb, depth_mm=corrupt(frame.depth_mm.copy(), mask), time=0.0,
                          intrinsics=INTRINSICS)
    if mask_only is not None:
        mask = mask & mask_only(mask)
    rows, cols = np.nonzero(mask)
    box = (float(cols.min()), float(rows.min()), float(cols.max()), float(rows.max()))
    name = "ball" if model is BALL else "cup"
    detection = Detection(name, 0.9, DetectionSource.COLOUR, box=box, mask=None if box_only else mask)
    measurement = Localizer(CONFIG, MOUNT).locate(detection, frame)
    assert measurement is not None
    assert measurement.source is DetectionSource.COLOUR and measurement.score == 0.9
    return measurement.position - centre


PLACES = [(0.40, 0.15), (0.55, 0.0), (0.72, -0.18)]


@pytest.mark.parametrize("x, y", PLACES)
def test_sphere_centre_is_exact(x: float, y: float) -> None:
    error = _locate(BALL, np.array([x, y, BALL.radius]))
    assert np.linalg.norm(error) < 1e-3, error


@pytest.mark.parametrize("x, y", PLACES)
def test_upright_centre_is_exact(x: float, y: float) -> None:
    error = _locate(CUP, np.array([x, y, CUP.height / 2.0]))
    assert np.linalg.norm(error) < 2e-3, error


def test_surface_is_not_the_centre() -> None:
    """Why the shape models exist: the median surface point is centimetres off the centre."""
    centre = np.array([0.55, 0.0, CUP.height / 2.0])
    frame, mask = _frame(CUP, centre)
    rows, cols = np.nonzero(mask)
    median = MOUNT.to_base(INTRINSICS.deproject(np.median(cols), np.median(rows),
                                                np.median(frame.depth_mm[mask]) / 1000.0))
    assert np.linalg.norm(median - centre) > 0.02


def _holes_and_spikes(depth_mm: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """30 % of the object's pixels without depth, 5 % with wild values (flying pixels, multipath)."""
    rng = np.random.default_rng(0)
    rows, cols = np.nonzero(mask)
    pick = rng.permutation(len(rows))
    holes, spikes = pick[:int(0.3 * len(pick))], pick[int(0.3 * len(pick)):int(0.35 * len(pick))]
    depth_mm[rows[holes], cols[holes]] = 0
    depth_mm[rows[spikes], cols[spikes]] = rng.integers(300, 2000, size=len(spikes))
    return depth_mm


@pytest.mark.parametrize("model", [BALL, CUP], ids=lambda m: m.shape)
def test_zero_depth_and_outliers_in_the_mask_are_ignored(model: ObjectModel) -> None:
    centre = np.array([0.5, 0.1, model.radius if model.shape == "sphere" else model.height / 2.0])
    error = _locate(model, centre, corrupt=_holes_and_spikes)
    assert np.linalg.norm(error) < 2e-3, error


@pytest.mark.parametrize("model", [BALL, CUP], ids=lambda m: m.shape)
def test_d435_depth_noise_costs_millimetres(model: ObjectModel) -> None:
    def noisy(depth_mm: np.ndarray, mask: np.ndarray) -> np.ndarray:
        z = depth_mm / 1000.0
        z = z + np.random.default_rng(1).normal(size=z.shape) * 0.005 * z ** 2  # the sim's D435 noise model
        return np.rint(z * 1000.0).astype(np.uint16)

    centre = np.array([0.6, -0.1, model.radius if model.shape == "sphere" else model.height / 2.0])
    error = _locate(model, centre, corrupt=noisy)
    assert np.linalg.norm(error) < 5e-3, error


def test_partial_sphere_mask_still_finds_the_centre() -> None:
    """A colour filter that misses the shaded half of a ball must not drag its centre."""
    centre = np.array([0.5, -0.05, BALL.radius])

    def lit_half(mask: np.ndarray) -> np.ndarray:
        cols = np.nonzero(mask)[1]
        return np.arange(mask.shape[1])[None, :] < np.median(cols)

    error = _locate(BALL, centre, mask_only=lit_half)
    assert np.linalg.norm(error) < 2e-3, error


@pytest.mark.parametrize("model", [BALL, CUP], ids=lambda m: m.shape)
def test_box_without_mask_is_enough(model: ObjectModel) -> None:
    centre = np.array([0.45, 0.05, model.radius if model.shape == "sphere" else model.height / 2.0])
    error = _locate(model, centre, box_only=True)
    assert np.linalg.norm(error) < 5e-3, error


def test_too_few_depth_pixels_is_no_measurement() -> None:
    frame, mask = _frame(BALL, np.array([0.5, 0.0, BALL.radius]))
    blind = RGBDFrame(rgb=frame.rgb, depth_mm=np.where(mask, 0, frame.depth_mm).astype(np.uint16), time=0.0,
                      intrinsics=INTRINSICS)
    detection = Detection("ball", 1.0, DetectionSource.COLOUR, mask=mask)
    assert Localizer(CONFIG, MOUNT).locate(detection, blind) is None


def test_fits_on_point_sets() -> None:
    rng = np.random.default_rng(2)
    camera = np.array([1.0, 0.0, 0.8])
    centre = np.array([0.5, 0.1, 0.05])
    normals = rng.normal(size=(400, 3))
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    facing = normals[normals @ (camera - centre) > 0.0]   # the visible hemisphere
    np.testing.assert_allclose(sphere_centre(centre + 0.04 * facing, 0.04, camera), centre, atol=1e-6)
    # a wall's top face (4 x 20 cm at 8 cm) and the side face towards the camera (x = 0.62)
    x, y = np.meshgrid(np.linspace(0.58, 0.62, 9), np.linspace(-0.1, 0.1, 41))
    face = np.column_stack([x.ravel(), y.ravel(), np.full(x.size, 0.08)])
    y, z = np.meshgrid(np.linspace(-0.1, 0.1, 41), np.linspace(0.0, 0.079, 8))
    side = np.column_stack([np.full(y.size, 0.62), y.ravel(), z.ravel()])
    estimate = upright_centre(np.vstack([face, side]), 0.08, camera, band=0.01, min_fraction=0.1)
    assert estimate is not None
    np.testing.assert_allclose(estimate, [0.6, 0.0, 0.04], atol=5e-3)
