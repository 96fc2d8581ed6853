"""Extrinsic calibration of a fixed camera: the camera_to_base transform that perception deprojects into.

Three ways to get it, for three lab situations:
- `static_board`: a printed board lies at a measured pose in the base frame (on the table, against
  a jig), or at several measured placements; its corners become known base-frame points, so
  camera_to_base follows from PnP (for one placement: board_to_base @ inv(board_to_camera)).
- `hand_eye`: the board is fixed to the gripper at an unknown offset and the robot moves it through
  several poses.  For every view, ee_to_base @ board_to_ee = camera_to_base @ board_to_camera, the
  AX = ZB robot-world/hand-eye problem; it gives camera_to_base and board_to_ee together.
- `points` / `points_depth`: no board at all, only >= 4 (better >= 10) pixels whose base-frame
  positions are known (e.g. touched with the gripper tip); PnP on the pixels, or, with their depths,
  a rigid 3-D fit (Kabsch) of the deprojected points polished by a fit weighing pixels and depths by
  their noise (a D435's depth is far noisier along the ray than a pixel is across it).

OpenCV 5's Python bindings no longer expose calibrateHandEye / calibrateRobotWorldHandEye (only
their flag constants), so the hand-eye solve is done here: a linear closed form for the start
(rotation from the Kronecker-product null space, then translation by least squares) refined by
minimising the reprojection error of every board corner over all views jointly.

Board frame (ours, for every board kind): origin at the centre of the printed pattern, x to the
right and y up as the image from `render_board_image` is viewed upright, z out of the printed face.
A board lying face up on the table, its image's top edge towards base +y, has board_to_base = a
pure translation.  OpenCV's ChArUco frame (origin at the top-left corner, y down, z into the
board) is converted on detection; a single ArUco marker's frame is already this one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import least_squares
from scipy.spatial.transform import Rotation

from farl_core.atomic_files import write_atomic
from farl_core.camera_model import CameraExtrinsics, CameraIntrinsics
from farl_core.errors import FarlError

logger = logging.getLogger(__name__)

# ground_truth: a simulated camera whose pose the scene knows exactly (the sim graph writes it).
MODES = ("static_board", "hand_eye", "points", "points_depth", "ground_truth")
FORMAT = "farl_camera_calibration"
FORMAT_VERSION = 1
MIN_HAND_EYE_VIEWS = 3              # two independent motions; use >= 8 for a few-mm result
MIN_POINTS = 4
MIN_ROTATION_SPREAD_DEG = 3.0       # RMS rotation about the second axis of the gripper's motions
ORTHONORMAL_TOLERANCE = 1e-3        # a hand-typed matrix with 4 decimals still loads
WARN_RMS_PX = 2.0                   # above this the inputs probably do not match (order, units, frames)
PIXEL_SIGMA = 0.5                   # px: a carefully picked pixel
DEPTH_SIGMA_PER_M2 = 0.005          # 1/m: D435 depth sigma = 0.005 z^2 (5 mm at 1 m), as farl_sim models it
DEPTH_SIGMA_MIN = 0.001             # m


class CalibrationError(FarlError):
    """The inputs cannot give a calibration (too few views or points, degenerate motion, bad file)."""


class BoardNotFound(CalibrationError):
    """An image shows too little of the board to compute its pose."""


@dataclass(frozen=True)
class BoardSpec:
    """A printed target: a ChArUco board (kind='charuco') or a single ArUco marker (kind='marker').

    Lengths are metres as measured on the print; a ChArUco board's squares_x runs along the image's
    width.  Every field is a plain value, so a spec reads straight from YAML: BoardSpec(**mapping).
    """

    kind: str = "charuco"
    dictionary: str = "DICT_5X5_100"
    squares_x: int = 7
    squares_y: int = 5
    square_length: float = 0.04
    marker_length: float = 0.03
    marker_id: int = 0              # kind='marker' only

    def __post_init__(self) -> None:
        if self.kind not in ("charuco", "marker"):
            raise CalibrationError(f"board kind '{self.kind}' is unknown: use 'charuco' or 'marker'")
        if not self.dictionary.startswith("DICT_") or not hasattr(cv2.aruco, self.dictionary):
            raise CalibrationError(f"ArUco dictionary '{self.dictionary}' is unknown: use an OpenCV name "
                                   "such as DICT_5X5_100 or DICT_APRILTAG_36h11")
        if self.marker_length <= 0.0:
            raise CalibrationError(f"marker_length must be positive metres, got {self.marker_length}")
        if self.kind == "charuco":
            if self.squares_x < 2 or self.squares_y < 2:
                raise CalibrationError(f"a ChArUco board needs at least 2x2 squares, got "
                                       f"{self.squares_x}x{self.squares_y}")
            if not 0.0 < self.marker_length < self.square_length:
                raise CalibrationError(f"marker_length ({self.marker_length} m) must be smaller than "
                                       f"square_length ({self.square_length} m)")

    @property
    def size(self) -> tuple[float, float]:
        """Width and height of the pattern in metres (without the white margin)."""
        if self.kind == "marker":
            return self.marker_length, self.marker_length
        return self.squares_x * self.square_length, self.squares_y * self.square_length

    def aruco_dictionary(self) -> cv2.aruco.Dictionary:
        return cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, self.dictionary))

    def charuco_board(self) -> cv2.aruco.CharucoBoard:
        return cv2.aruco.CharucoBoard((self.squares_x, self.squares_y), self.square_length, self.marker_length,
                                      self.aruco_dictionary())


@dataclass(frozen=True)
class BoardObservation:
    """Board points matched in one image: board-frame metres (N, 3) and their pixels (N, 2)."""

    object_points: np.ndarray
    image_points: np.ndarray


@dataclass(frozen=True)
class CalibrationResult:
    """A camera_to_base estimate and the evidence for it (residuals, how much data, which intrinsics)."""

    camera_to_base: np.ndarray              # 4x4, optical frame -> robot base frame
    mode: str
    intrinsics: CameraIntrinsics
    reprojection_rms_px: float | None       # image-space fit; None where the mode has no pixels
    rms_mm: float | None                    # 3-D fit; None where the mode has no 3-D correspondences
    n_views: int
    n_points: int
    timestamp: str                          # ISO 8601, UTC
    marker_to_ee: np.ndarray | None = None  # hand_eye only: the board's pose in the end-effector frame

    @property
    def extrinsics(self) -> CameraExtrinsics:
        return CameraExtrinsics.from_matrix(self.camera_to_base)

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": FORMAT_VERSION, "mode": self.mode, "timestamp": self.timestamp,
                "camera_to_base": self.camera_to_base.tolist(),
                "marker_to_ee": None if self.marker_to_ee is None else self.marker_to_ee.tolist(),
                "reprojection_rms_px": self.reprojection_rms_px, "rms_mm": self.rms_mm,
                "n_views": self.n_views, "n_points": self.n_points, "intrinsics": asdict(self.intrinsics)}


def render_board_image(spec: BoardSpec, pixels_per_metre: float, margin_m: float = 0.01) -> np.ndarray:
    """The printable target, uint8 greyscale, `pixels_per_metre` at true scale, centred in a white margin.

    The margin is the quiet zone marker detection needs around the black outer squares and marker
    borders.  Print at 100 % and measure a square: the measured lengths are what the spec must hold.
    """
    if pixels_per_metre <= 0.0 or margin_m < 0.0:
        raise CalibrationError("pixels_per_metre must be positive and margin_m non-negative")
    width, height = spec.size
    margin = round(margin_m * pixels_per_metre)
    if spec.kind == "marker":
        side = round(width * pixels_per_metre)
        marker = cv2.aruco.generateImageMarker(spec.aruco_dictionary(), spec.marker_id, side)
        return cv2.copyMakeBorder(marker, margin, margin, margin, margin, cv2.BORDER_CONSTANT, value=255)
    out_size = (round(width * pixels_per_metre) + 2 * margin, round(height * pixels_per_metre) + 2 * margin)
    return spec.charuco_board().generateImage(out_size, marginSize=margin)


def detect_board(image: np.ndarray, spec: BoardSpec, label: str = "the image") -> BoardObservation:
    """Find the board in an RGB or greyscale image; raise BoardNotFound, naming `label`, if it cannot give a pose."""
    gray = _grayscale(image, label)
    if spec.kind == "marker":
        parameters = cv2.aruco.DetectorParameters()
        parameters.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
        corners, ids, _ = cv2.aruco.ArucoDetector(spec.aruco_dictionary(), parameters).detectMarkers(gray)
        found = [] if ids is None else ids.ravel().tolist()
        if spec.marker_id not in found:
            raise BoardNotFound(f"marker {spec.marker_id} ({spec.dictionary}) not found in {label} (saw ids {found}): "
                                "check the lighting, focus and that the whole marker and its white margin are in view")
        half = spec.marker_length / 2.0
        corners_board = np.array([[-half, half, 0.0], [half, half, 0.0], [half, -half, 0.0], [-half, -half, 0.0]])
        return BoardObservation(corners_board, np.asarray(corners[found.index(spec.marker_id)], float).reshape(4, 2))
    board = spec.charuco_board()
    corners, ids, _, marker_ids = cv2.aruco.CharucoDetector(board).detectBoard(gray)
    n_markers = 0 if marker_ids is None else len(marker_ids)
    if ids is None or len(ids) < MIN_POINTS or board.checkCharucoCornersCollinear(ids):
        n_corners = 0 if ids is None else len(ids)
        raise BoardNotFound(f"ChArUco board not found in {label} ({n_markers} markers, {n_corners} usable corners; "
                            f"need {MIN_POINTS} not on one line): check the board spec ({spec.squares_x}x"
                            f"{spec.squares_y} {spec.dictionary}), lighting and that the board is in view")
    object_points, image_points = board.matchImagePoints(corners, ids)
    object_cv = object_points.reshape(-1, 3).astype(float)
    width, height = spec.size
    # OpenCV's board frame has its origin at the top-left corner, y down and z into the board.
    object_ours = np.stack([object_cv[:, 0] - width / 2.0, height / 2.0 - object_cv[:, 1], -object_cv[:, 2]], axis=1)
    return BoardObservation(object_ours, image_points.reshape(-1, 2).astype(float))


def calibrate_static_board(observations: Sequence[BoardObservation], intrinsics: CameraIntrinsics,
                           board_to_base: ArrayLike) -> CalibrationResult:
    """Mode A: the board lies still at a measured pose, one 4x4 for every image or one per image.

    One view of a small board is weak: with 0.25 px corner noise 1 m from the camera, an A3 board
    (36 x 24 cm) flat on the table gives ~2.4 mm median error (5 mm at the 95th percentile), a
    21 x 17.5 cm board ~5.6 mm, and a board facing the camera square-on far worse (the planar pose
    ambiguity).  Moving the board to 3 or more measured placements (one board_to_base per image)
    fits all their corners as one 3-D point set, which removes the ambiguity and averages the noise
    (~1.2 mm median for the small board).
    """
    if not observations:
        raise CalibrationError("static-board calibration needs at least one image of the board")
    placements = np.asarray(board_to_base, dtype=float)
    if placements.shape == (4, 4):
        placements = np.broadcast_to(placements, (len(observations), 4, 4))
    if len(placements) != len(observations):
        raise CalibrationError(f"static-board calibration got {len(observations)} images but {len(placements)} "
                               "board poses: give one board_to_base for all images or one per image")
    poses = [_as_transform(pose, f"board_to_base[{i}]") for i, pose in enumerate(placements)]
    in_base = [BoardObservation(_apply(pose, o.object_points), o.image_points)
               for pose, o in zip(poses, observations, strict=True)]
    points_base = np.concatenate([o.object_points for o in in_base])
    base_to_camera = _solve_pnp(points_base, np.concatenate([o.image_points for o in in_base]), intrinsics)
    return _result(np.linalg.inv(base_to_camera), "static_board", intrinsics,
                   _reprojection_rms(base_to_camera, in_base, intrinsics), None, len(observations), len(points_base))


def calibrate_hand_eye(observations: Sequence[BoardObservation], ee_to_base: Sequence[ArrayLike],
                       intrinsics: CameraIntrinsics) -> CalibrationResult:
    """Mode B: a fixed camera watching a board on the gripper; one robot pose (ee_to_base) per observation.

    The gripper must rotate about at least two different axes between views (tilt and turn the
    wrist), otherwise the board's offset on the gripper and the camera pose trade off against each
    other and no image can tell them apart.
    """
    if len(observations) != len(ee_to_base):
        raise CalibrationError(f"hand-eye calibration got {len(observations)} images but {len(ee_to_base)} robot "
                               "poses: record one end-effector pose per image")
    if len(observations) < MIN_HAND_EYE_VIEWS:
        raise CalibrationError(f"hand-eye calibration needs at least {MIN_HAND_EYE_VIEWS} views (8 or more for a "
                               f"few-mm result), got {len(observations)}")
    ee_poses = [_as_transform(pose, f"ee_to_base[{i}]") for i, pose in enumerate(ee_to_base)]
    _check_rotation_spread([pose[:3, :3] for pose in ee_poses])
    board_poses = [_solve_pnp(o.object_points, o.image_points, intrinsics) for o in observations]
    camera_to_base, board_to_ee = _hand_eye_closed_form(ee_poses, board_poses)
    camera_to_base, board_to_ee = _refine_hand_eye(camera_to_base, board_to_ee, ee_poses, observations, intrinsics)
    rms_px = _reprojection_rms_hand_eye(camera_to_base, board_to_ee, ee_poses, observations, intrinsics)
    gaps = [_apply(camera_to_base @ b, o.object_points) - _apply(a @ board_to_ee, o.object_points)
            for a, b, o in zip(ee_poses, board_poses, observations, strict=True)]
    rms_mm = 1000.0 * float(np.sqrt(np.mean(np.sum(np.concatenate(gaps) ** 2, axis=1))))
    return _result(camera_to_base, "hand_eye", intrinsics, rms_px, rms_mm, len(observations),
                   sum(len(o.object_points) for o in observations), marker_to_ee=board_to_ee)


def calibrate_from_points(pixels: ArrayLike, points_base: ArrayLike, intrinsics: CameraIntrinsics,
                          depths_m: ArrayLike | None = None) -> CalibrationResult:
    """Mode C: pixels of points whose base-frame positions are known, optionally with their depths.

    Without depth it is PnP: >= 4 points, but with half-pixel clicks a camera 1 m away misses
    5 mm / 0.5 deg for ~1 in 5 sets of 6 random workspace points and ~1 in 75 sets of 12, so take 10
    or more spread over the image and the workspace's height.  With depths (metres along the optical axis, from the
    aligned depth image) the Kabsch fit of the deprojected points starts a joint fit of pixels and
    depths, which helps most where the points span little of the image.
    """
    pixels_arr = np.asarray(pixels, dtype=float)
    base = np.asarray(points_base, dtype=float)
    if pixels_arr.ndim != 2 or pixels_arr.shape[1] != 2 or base.shape != (len(pixels_arr), 3):
        raise CalibrationError(f"points calibration needs N pixels (N, 2) and N base points (N, 3), got shapes "
                               f"{pixels_arr.shape} and {base.shape}")
    if len(base) < MIN_POINTS:
        raise CalibrationError(f"points calibration needs at least {MIN_POINTS} points (6 or more recommended), "
                               f"got {len(base)}")
    if not (np.all(np.isfinite(pixels_arr)) and np.all(np.isfinite(base))):
        raise CalibrationError("points calibration got NaN or infinite coordinates: remove those points")
    spread = np.linalg.svd(base - base.mean(axis=0), compute_uv=False)
    if spread[1] < 1e-3 * np.sqrt(len(base)):
        raise CalibrationError("the known points lie (nearly) on one line: spread them over the workspace")
    if depths_m is None:
        base_to_camera = _solve_pnp(base, pixels_arr, intrinsics)
        observation = BoardObservation(base, pixels_arr)
        return _result(np.linalg.inv(base_to_camera), "points", intrinsics,
                       _reprojection_rms(base_to_camera, [observation], intrinsics), None, 1, len(base))
    depths = np.asarray(depths_m, dtype=float).reshape(-1)
    if depths.shape != (len(base),) or not np.all(np.isfinite(depths) & (depths > 0.0)):
        raise CalibrationError("points_depth calibration needs one positive depth (metres) per point; "
                               "a 0 or NaN depth means the camera measured nothing there: pick another pixel")
    camera_points = intrinsics.deproject(pixels_arr[:, 0], pixels_arr[:, 1], depths)
    camera_to_base = _refine_with_depth(_kabsch(camera_points, base), pixels_arr, base, depths, intrinsics)
    rms_mm = 1000.0 * float(np.sqrt(np.mean(np.sum((_apply(camera_to_base, camera_points) - base) ** 2, axis=1))))
    rms_px = _reprojection_rms(np.linalg.inv(camera_to_base), [BoardObservation(base, pixels_arr)], intrinsics)
    return _result(camera_to_base, "points_depth", intrinsics, rms_px, rms_mm, 1, len(base))


def calibrate_from_images(images: Sequence[np.ndarray | str | Path], intrinsics: CameraIntrinsics,
                          spec: BoardSpec, mode: str, *, board_to_base: ArrayLike | None = None,
                          ee_to_base: Sequence[ArrayLike] | None = None) -> CalibrationResult:
    """The CLI's entry point for the board modes: images as arrays (RGB or grey) or file paths.

    mode 'static_board' needs board_to_base (4x4); mode 'hand_eye' needs one ee_to_base (4x4) per image.
    """
    if mode not in ("static_board", "hand_eye"):
        raise CalibrationError(f"calibration mode '{mode}' does not use board images: use 'static_board' or "
                               "'hand_eye' (or calibrate_from_points for 'points')")
    observations = [detect_board(_load_image(image, i), spec, _label(image, i)) for i, image in enumerate(images)]
    if mode == "static_board":
        if board_to_base is None:
            raise CalibrationError("static_board calibration needs board_to_base: the measured 4x4 board pose")
        return calibrate_static_board(observations, intrinsics, board_to_base)
    if ee_to_base is None:
        raise CalibrationError("hand_eye calibration needs ee_to_base: one end-effector pose (4x4) per image")
    return calibrate_hand_eye(observations, ee_to_base, intrinsics)


def save_calibration(result: CalibrationResult, path: str | Path, overwrite: bool = False) -> Path:
    """Write the result as JSON atomically; an existing file is replaced only with overwrite=True."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise CalibrationError(f"calibration {path} already exists (choose another path, or pass --overwrite)")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda staging: staging.write_text(json.dumps(result.to_dict(), indent=2) + "\n"))
    return path


def load_calibration(path: str | Path) -> CalibrationResult:
    """Read a calibration file, checking that camera_to_base is a rigid 4x4 transform."""
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"calibration file {path} not found: run `farl perception calibrate` first")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CalibrationError(f"calibration file {path} is not valid JSON ({exc}): recalibrate or fix it") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CalibrationError(f"{path} is not a FARL camera calibration (no \"format\": \"{FORMAT}\")")
    if data.get("version") != FORMAT_VERSION:
        raise CalibrationError(f"{path} has calibration format version {data.get('version')}, this FARL reads "
                               f"version {FORMAT_VERSION}: recalibrate")
    if data.get("mode") not in MODES:
        raise CalibrationError(f"calibration file {path} has mode {data.get('mode')!r}, not one of {', '.join(MODES)}")
    try:
        marker = data.get("marker_to_ee")
        return CalibrationResult(
            camera_to_base=_as_transform(data["camera_to_base"], f"camera_to_base in {path}"),
            mode=data["mode"], intrinsics=CameraIntrinsics(**data["intrinsics"]),
            reprojection_rms_px=_optional_float(data.get("reprojection_rms_px")),
            rms_mm=_optional_float(data.get("rms_mm")), n_views=int(data["n_views"]),
            n_points=int(data["n_points"]), timestamp=str(data["timestamp"]),
            marker_to_ee=None if marker is None else _as_transform(marker, f"marker_to_ee in {path}"))
    except KeyError as exc:
        raise CalibrationError(f"calibration file {path} lacks the field {exc}: recalibrate") from None
    except (TypeError, ValueError) as exc:
        raise CalibrationError(f"calibration file {path} has a malformed field ({exc}): recalibrate") from None


def _result(camera_to_base: np.ndarray, mode: str, intrinsics: CameraIntrinsics, rms_px: float | None,
            rms_mm: float | None, n_views: int, n_points: int,
            marker_to_ee: np.ndarray | None = None) -> CalibrationResult:
    if rms_px is not None and rms_px > WARN_RMS_PX:
        logger.warning("%s calibration fits its pixels to %.1f px RMS only: check that the inputs belong together "
                       "(image order, pose units and frames, intrinsics)", mode, rms_px)
    return CalibrationResult(camera_to_base=camera_to_base, mode=mode, intrinsics=intrinsics,
                             reprojection_rms_px=rms_px, rms_mm=rms_mm, n_views=n_views, n_points=n_points,
                             timestamp=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                             marker_to_ee=marker_to_ee)


def ground_truth_calibration(camera_to_base: np.ndarray, intrinsics: CameraIntrinsics) -> CalibrationResult:
    """The exact pose of a simulated camera as a calibration result, so the perception node reads a
    simulated camera exactly as it reads a calibrated real one (its `calibration_file`)."""
    return _result(_as_transform(camera_to_base, "camera_to_base"), "ground_truth", intrinsics,
                   rms_px=None, rms_mm=0.0, n_views=0, n_points=0)


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _as_transform(value: ArrayLike, name: str) -> np.ndarray:
    """A validated rigid 4x4 transform; a one-line error naming `name` otherwise."""
    try:
        transform = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise CalibrationError(f"{name} is not a numeric 4x4 matrix") from None
    if transform.shape != (4, 4) or not np.all(np.isfinite(transform)):
        raise CalibrationError(f"{name} must be a finite 4x4 transform, got shape {transform.shape}")
    rotation = transform[:3, :3]
    if (np.abs(rotation.T @ rotation - np.eye(3)).max() > ORTHONORMAL_TOLERANCE or np.linalg.det(rotation) < 0.0
            or np.abs(transform[3] - [0.0, 0.0, 0.0, 1.0]).max() > 1e-9):
        raise CalibrationError(f"{name} is not a rigid transform (its 3x3 block must be a rotation and its last "
                               "row 0 0 0 1)")
    return transform


def _grayscale(image: np.ndarray, label: str) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if image.ndim != 2 or image.dtype != np.uint8:
        raise CalibrationError(f"{label} must be an 8-bit greyscale or RGB image, got {image.dtype} {image.shape}")
    return image


def _load_image(image: np.ndarray | str | Path, index: int) -> np.ndarray:
    if not isinstance(image, (str, Path)):
        return image
    loaded = cv2.imread(str(image), cv2.IMREAD_GRAYSCALE)
    if loaded is None:
        raise CalibrationError(f"cannot read image {index} ({image}): missing file or not an image format")
    return loaded


def _label(image: np.ndarray | str | Path, index: int) -> str:
    return f"image {index} ({image})" if isinstance(image, (str, Path)) else f"image {index}"


def _transform(rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    transform = np.eye(4)
    transform[:3, :3] = rotation
    transform[:3, 3] = np.ravel(translation)
    return transform


def _apply(transform: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ transform[:3, :3].T + transform[:3, 3]


def _solve_pnp(object_points: np.ndarray, image_points: np.ndarray, intrinsics: CameraIntrinsics) -> np.ndarray:
    """object_to_camera from 3-D/2-D pairs: SQPnP (global, planar or not, >= 3 points) polished by LM."""
    objects, pixels = object_points.astype(np.float64), image_points.astype(np.float64)
    ok, rvec, tvec = cv2.solvePnP(objects, pixels, intrinsics.matrix, None, flags=cv2.SOLVEPNP_SQPNP)
    if not ok:
        raise CalibrationError("no camera pose fits the points (PnP failed): check the point correspondences")
    rvec, tvec = cv2.solvePnPRefineLM(objects, pixels, intrinsics.matrix, None, rvec, tvec)
    return _transform(cv2.Rodrigues(rvec)[0], tvec)


def _reprojection_rms(object_to_camera: np.ndarray, observations: Sequence[BoardObservation],
                      intrinsics: CameraIntrinsics) -> float:
    errors = [intrinsics.project(_apply(object_to_camera, o.object_points)) - o.image_points for o in observations]
    return float(np.sqrt(np.mean(np.sum(np.concatenate(errors) ** 2, axis=1))))


def _reprojection_rms_hand_eye(camera_to_base: np.ndarray, board_to_ee: np.ndarray, ee_poses: Sequence[np.ndarray],
                               observations: Sequence[BoardObservation], intrinsics: CameraIntrinsics) -> float:
    residual = _hand_eye_residuals(camera_to_base, board_to_ee, ee_poses, observations, intrinsics).reshape(-1, 2)
    return float(np.sqrt(np.mean(np.sum(residual ** 2, axis=1))))


def _check_rotation_spread(rotations: Sequence[np.ndarray]) -> None:
    """Refuse gripper motions whose rotations all share one axis (or are too small to measure)."""
    pairs = [Rotation.from_matrix(rotations[j] @ rotations[i].T).as_rotvec()
             for i in range(len(rotations)) for j in range(i + 1, len(rotations))]
    singular = np.linalg.svd(np.asarray(pairs), compute_uv=False)   # >= 3 pairs: 3 singular values
    spread_deg = float(np.degrees(singular[1] / np.sqrt(len(pairs))))
    if spread_deg < MIN_ROTATION_SPREAD_DEG:
        raise CalibrationError(f"degenerate hand-eye motion: the gripper's rotations vary by {spread_deg:.1f} deg "
                               f"about a second axis (need >= {MIN_ROTATION_SPREAD_DEG:g}); tilt the wrist about two "
                               "different axes between views, not only turn it or translate")


def _hand_eye_closed_form(ee_poses: Sequence[np.ndarray],
                          board_poses: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Linear start for ee_to_base @ Y = X @ board_to_camera: X = camera_to_base, Y = board_to_ee.

    Rotations: R_ee R_Y = R_X R_cam is linear in (vec R_Y, vec R_X) (column-major vec: vec(AB) =
    (I kron A) vec B, vec(AB) = (B^T kron I) vec A); its null vector, rescaled and projected onto
    SO(3), starts both.  Translations then follow from R_ee t_Y - t_X = R_X t_cam - t_ee.
    """
    identity = np.eye(3)
    rows = [np.hstack([np.kron(identity, a[:3, :3]), -np.kron(b[:3, :3].T, identity)])
            for a, b in zip(ee_poses, board_poses, strict=True)]
    null = np.linalg.svd(np.vstack(rows))[2][-1]
    rot_y, rot_x = null[:9].reshape(3, 3, order="F"), null[9:].reshape(3, 3, order="F")
    sign = np.sign(np.linalg.det(rot_x))
    rot_x, rot_y = _nearest_rotation(sign * rot_x), _nearest_rotation(sign * rot_y)
    lhs = np.vstack([np.hstack([a[:3, :3], -identity]) for a in ee_poses])
    rhs = np.concatenate([rot_x @ b[:3, 3] - a[:3, 3] for a, b in zip(ee_poses, board_poses, strict=True)])
    solution = np.linalg.lstsq(lhs, rhs, rcond=None)[0]
    return _transform(rot_x, solution[3:]), _transform(rot_y, solution[:3])


def _nearest_rotation(matrix: np.ndarray) -> np.ndarray:
    u, _, vt = np.linalg.svd(matrix)
    return u @ np.diag([1.0, 1.0, np.linalg.det(u @ vt)]) @ vt


def _hand_eye_residuals(camera_to_base: np.ndarray, board_to_ee: np.ndarray, ee_poses: Sequence[np.ndarray],
                        observations: Sequence[BoardObservation], intrinsics: CameraIntrinsics) -> np.ndarray:
    base_to_camera = np.linalg.inv(camera_to_base)
    errors = [intrinsics.project(_apply(base_to_camera @ a @ board_to_ee, o.object_points)) - o.image_points
              for a, o in zip(ee_poses, observations, strict=True)]
    return np.concatenate(errors).ravel()


def _refine_hand_eye(camera_to_base: np.ndarray, board_to_ee: np.ndarray, ee_poses: Sequence[np.ndarray],
                     observations: Sequence[BoardObservation],
                     intrinsics: CameraIntrinsics) -> tuple[np.ndarray, np.ndarray]:
    """Both unknowns by least-squares reprojection error over every corner of every view."""
    def unpack(params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _perturbed(camera_to_base, params[:6]), _perturbed(board_to_ee, params[6:])

    start = np.concatenate([_unperturbed(camera_to_base), _unperturbed(board_to_ee)])
    fit = least_squares(lambda p: _hand_eye_residuals(*unpack(p), ee_poses, observations, intrinsics), start,
                        method="lm")
    return unpack(fit.x)


def _refine_with_depth(camera_to_base: np.ndarray, pixels: np.ndarray, points_base: np.ndarray,
                       depths: np.ndarray, intrinsics: CameraIntrinsics) -> np.ndarray:
    """camera_to_base minimising pixel and depth residuals, each divided by its expected noise."""
    depth_sigma = np.maximum(DEPTH_SIGMA_MIN, DEPTH_SIGMA_PER_M2 * depths ** 2)

    def residuals(params: np.ndarray) -> np.ndarray:
        camera_points = _apply(np.linalg.inv(_perturbed(camera_to_base, params)), points_base)
        pixel_error = (intrinsics.project(camera_points) - pixels) / PIXEL_SIGMA
        return np.concatenate([pixel_error.ravel(), (camera_points[:, 2] - depths) / depth_sigma])

    return _perturbed(camera_to_base, least_squares(residuals, _unperturbed(camera_to_base), method="lm").x)


def _perturbed(transform: np.ndarray, params: np.ndarray) -> np.ndarray:
    """The transform with rotation R0 exp(params[:3]) and translation params[3:]: no singularity near R0."""
    return _transform(transform[:3, :3] @ Rotation.from_rotvec(params[:3]).as_matrix(), params[3:])


def _unperturbed(transform: np.ndarray) -> np.ndarray:
    """The parameters for which `_perturbed` returns `transform` itself."""
    return np.concatenate([np.zeros(3), transform[:3, 3]])


def _kabsch(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The rigid transform (no scale) taking `source` points onto `target` points in least squares."""
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    covariance = (source - source_mean).T @ (target - target_mean)
    u, _, vt = np.linalg.svd(covariance)
    rotation = vt.T @ np.diag([1.0, 1.0, np.linalg.det(vt.T @ u.T)]) @ u.T
    return _transform(rotation, target_mean - rotation @ source_mean)
