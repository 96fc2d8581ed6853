"""Extrinsic calibration against ground truth: boards rendered by MuJoCo from a camera at a known pose.

The scene is a bare MuJoCo model (no franky-sim): the project's D435 camera (added with farl_sim's
`add_camera`, so the intrinsics convention is the one perception sees in sim) and three mocap bodies
textured with `render_board_image` output: an A3 ChArUco board for the table, a smaller one and a
single marker for the gripper.  A mocap body is the "gripper" of the hand-eye test: placing the
board at ee_to_base @ board_to_ee is all a robot would do.  MuJoCo maps a 2-D texture onto a box's
+z face upright (image top towards +y), so the body frame is the board frame; a mirrored or turned
texture would show as undecodable markers or a pose off by a flip.  The points modes need no
images: known points are projected, with noise.  The done-when bound is 5 mm and 0.5 degrees on
camera_to_base for every mode.
Rendering needs MUJOCO_GL=egl (or osmesa) in the environment, as for farl_sim's scene tests.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import mujoco
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from farl_core.camera_model import CameraExtrinsics, CameraIntrinsics
from farl_perception.calibration import (
    BoardNotFound,
    BoardObservation,
    BoardSpec,
    CalibrationError,
    CalibrationResult,
    calibrate_from_images,
    calibrate_from_points,
    calibrate_hand_eye,
    load_calibration,
    render_board_image,
    save_calibration,
)
from farl_sim.franka_scenes.camera import DEFAULT_EXTRINSICS, D435Config, add_camera

INTRINSICS = CameraIntrinsics()                 # 640x480, fx = fy = 615
CAMERA = DEFAULT_EXTRINSICS                     # the scenes' D435: 0.96 m from the workspace, 56 deg down
TABLE_BOARD = BoardSpec(kind="charuco", dictionary="DICT_5X5_100", squares_x=9, squares_y=6, square_length=0.04,
                        marker_length=0.03)     # A3
CHARUCO = BoardSpec(kind="charuco", dictionary="DICT_5X5_100", squares_x=6, squares_y=5, square_length=0.035,
                    marker_length=0.026)        # 21 x 17.5 cm
MARKER = BoardSpec(kind="marker", dictionary="DICT_5X5_100", marker_length=0.10, marker_id=42)
BOARDS = {"table_board": TABLE_BOARD, "charuco": CHARUCO, "marker": MARKER}
PIXELS_PER_METRE = 4000.0
THICKNESS = 0.002
PARKED = np.array([5.0, 5.0, -5.0])             # out of the camera's view
TOLERANCE_MM, TOLERANCE_DEG = 5.0, 0.5


def pose(rotvec: tuple[float, float, float], position: tuple[float, float, float]) -> np.ndarray:
    transform = np.eye(4)
    transform[:3, :3] = Rotation.from_rotvec(rotvec).as_matrix()
    transform[:3, 3] = position
    return transform


def errors(estimate: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Translation error (mm) and rotation error (deg) of one transform against another."""
    rotation = Rotation.from_matrix(estimate[:3, :3] @ truth[:3, :3].T)
    return 1000.0 * float(np.linalg.norm(estimate[:3, 3] - truth[:3, 3])), float(np.degrees(rotation.magnitude()))


@dataclass
class BoardScene:
    model: mujoco.MjModel
    data: mujoco.MjData
    renderer: mujoco.Renderer

    def render(self, **board_to_base: np.ndarray) -> np.ndarray:
        """RGB image with the named boards at their poses and every other board parked out of view."""
        for index, name in enumerate(BOARDS):
            quaternion = np.array([1.0, 0.0, 0.0, 0.0])
            pose_in_base = board_to_base.get(name)
            if pose_in_base is None:
                self.data.mocap_pos[index] = PARKED
            else:
                self.data.mocap_pos[index] = pose_in_base[:3, 3]
                mujoco.mju_mat2Quat(quaternion, pose_in_base[:3, :3].ravel())
            self.data.mocap_quat[index] = quaternion
        mujoco.mj_forward(self.model, self.data)
        self.renderer.update_scene(self.data, camera="d435")
        return self.renderer.render()


def _board_body(worldbody: ET.Element, name: str, image: np.ndarray) -> None:
    """A mocap body whose +z face shows the image upright: board frame = body frame, face at z = 0."""
    half_width, half_height = image.shape[1] / PIXELS_PER_METRE / 2.0, image.shape[0] / PIXELS_PER_METRE / 2.0
    body = ET.SubElement(worldbody, "body", name=name, mocap="true", pos=" ".join(map(str, PARKED)))
    ET.SubElement(body, "geom", type="box", material=name, pos=f"0 0 {-THICKNESS / 2}",
                  size=f"{half_width} {half_height} {THICKNESS / 2}", contype="0", conaffinity="0")


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BoardScene]:
    folder = tmp_path_factory.mktemp("boards")
    root = ET.fromstring("<mujoco><visual><headlight ambient='0.6 0.6 0.6' diffuse='0.4 0.4 0.4'/></visual>"
                         "<asset/><worldbody/></mujoco>")
    asset, worldbody = root.find("asset"), root.find("worldbody")
    for name, spec in BOARDS.items():
        image = render_board_image(spec, PIXELS_PER_METRE)
        cv2.imwrite(str(folder / f"{name}.png"), image)
        ET.SubElement(asset, "texture", name=name, type="2d", file=str(folder / f"{name}.png"))
        ET.SubElement(asset, "material", name=name, texture=name)
        _board_body(worldbody, name, image)
    add_camera(root, D435Config(intrinsics=INTRINSICS, extrinsics=CAMERA))
    model = mujoco.MjModel.from_xml_string(ET.tostring(root, encoding="unicode"))
    renderer = mujoco.Renderer(model, height=INTRINSICS.height, width=INTRINSICS.width)
    renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
    yield BoardScene(model, mujoco.MjData(model), renderer)
    renderer.close()


def test_static_board_one_image_of_an_a3_board(scene: BoardScene, tmp_path: Path) -> None:
    board_to_base = pose((0.0, 0.0, np.radians(10.0)), (0.55, 0.02, 0.0))   # face up, turned 10 deg
    path = tmp_path / "board.png"
    cv2.imwrite(str(path), cv2.cvtColor(scene.render(table_board=board_to_base), cv2.COLOR_RGB2BGR))
    result = calibrate_from_images([path], INTRINSICS, TABLE_BOARD, "static_board", board_to_base=board_to_base)
    mm, deg = errors(result.camera_to_base, CAMERA.matrix)
    print(f"static A3 board, one image: {mm:.2f} mm, {deg:.3f} deg, {result.reprojection_rms_px:.3f} px")
    assert mm < TOLERANCE_MM and deg < TOLERANCE_DEG
    assert result.mode == "static_board" and result.n_views == 1 and result.n_points >= 30
    assert result.reprojection_rms_px < 0.5


def test_static_board_at_three_placements(scene: BoardScene) -> None:
    placements = [pose((0.0, 0.0, np.radians(20.0)), (0.45, 0.15, 0.0)),
                  pose((0.0, 0.0, np.radians(-15.0)), (0.60, -0.15, 0.0)),
                  pose((np.radians(-20.0), 0.0, np.radians(90.0)), (0.70, 0.05, 0.03))]
    images = [scene.render(charuco=placement) for placement in placements]
    result = calibrate_from_images(images, INTRINSICS, CHARUCO, "static_board", board_to_base=placements)
    mm, deg = errors(result.camera_to_base, CAMERA.matrix)
    print(f"static board, three placements: {mm:.2f} mm, {deg:.3f} deg, {result.reprojection_rms_px:.3f} px")
    assert mm < TOLERANCE_MM and deg < TOLERANCE_DEG
    assert result.n_views == 3


@pytest.mark.parametrize("name", ["charuco", "marker"])
def test_hand_eye_with_the_board_on_the_gripper(scene: BoardScene, name: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    board_to_ee = pose((0.2, -0.3, 1.2), (0.02, -0.03, 0.09))
    facing = CameraExtrinsics.look_at(position=(0.65, 0.0, 0.20), target=CAMERA.position).matrix  # z at the camera
    images, ee_poses = [], []
    for _ in range(10):
        board_to_base = facing @ pose(tuple(rng.uniform(-0.45, 0.45, 3)), (0.0, 0.0, 0.0))
        board_to_base[:3, 3] += rng.uniform(-0.08, 0.08, 3)
        images.append(scene.render(**{name: board_to_base}))
        ee_poses.append(board_to_base @ np.linalg.inv(board_to_ee))
    result = calibrate_from_images(images, INTRINSICS, BOARDS[name], "hand_eye", ee_to_base=ee_poses)
    mm, deg = errors(result.camera_to_base, CAMERA.matrix)
    offset_mm, offset_deg = errors(result.marker_to_ee, board_to_ee)
    print(f"hand-eye ({name}): camera {mm:.2f} mm, {deg:.3f} deg; board on gripper {offset_mm:.2f} mm, "
          f"{offset_deg:.3f} deg; {result.reprojection_rms_px:.3f} px, {result.rms_mm:.2f} mm")
    assert mm < TOLERANCE_MM and deg < TOLERANCE_DEG
    assert offset_mm < TOLERANCE_MM and offset_deg < TOLERANCE_DEG
    assert result.mode == "hand_eye" and result.n_views == 10
    reloaded = load_calibration(save_calibration(result, tmp_path / "hand_eye.json"))
    np.testing.assert_array_equal(reloaded.marker_to_ee, result.marker_to_ee)


def test_hand_eye_refuses_rotation_about_one_axis() -> None:
    ee_poses = [pose((0.0, 0.0, angle), (0.5, 0.1 * angle, 0.3)) for angle in np.linspace(-1.0, 1.0, 6)]
    observation = BoardObservation(np.zeros((4, 3)), np.zeros((4, 2)))
    with pytest.raises(CalibrationError, match="degenerate hand-eye motion"):
        calibrate_hand_eye([observation] * len(ee_poses), ee_poses, INTRINSICS)
    with pytest.raises(CalibrationError, match="at least 3 views"):
        calibrate_hand_eye([observation] * 2, ee_poses[:2], INTRINSICS)


def _known_points(rng: np.random.Generator, count: int) -> np.ndarray:
    """Points the gripper could touch: the table's workspace, up to 0.4 m above it."""
    return rng.uniform([0.35, -0.25, 0.0], [0.75, 0.25, 0.4], size=(count, 3))


def test_points_pnp_with_half_a_pixel_of_noise() -> None:
    rng = np.random.default_rng(0)
    points = _known_points(rng, 12)
    pixels = INTRINSICS.project(CAMERA.to_camera(points)) + rng.normal(scale=0.5, size=(12, 2))
    result = calibrate_from_points(pixels, points, INTRINSICS)
    mm, deg = errors(result.camera_to_base, CAMERA.matrix)
    print(f"points (PnP): {mm:.2f} mm, {deg:.3f} deg, {result.reprojection_rms_px:.3f} px")
    assert mm < TOLERANCE_MM and deg < TOLERANCE_DEG
    assert result.mode == "points" and result.n_points == 12 and result.reprojection_rms_px < 1.0


def test_points_with_depth() -> None:
    """Depth noise as a D435's at this range (5 mm at 1 m); pixels picked to half a pixel."""
    rng = np.random.default_rng(1)
    points = _known_points(rng, 12)
    camera_points = CAMERA.to_camera(points)
    pixels = INTRINSICS.project(camera_points) + rng.normal(scale=0.5, size=(12, 2))
    depths = camera_points[:, 2] + rng.normal(size=12) * 0.005 * camera_points[:, 2] ** 2
    result = calibrate_from_points(pixels, points, INTRINSICS, depths_m=depths)
    mm, deg = errors(result.camera_to_base, CAMERA.matrix)
    print(f"points with depth: {mm:.2f} mm, {deg:.3f} deg, {result.reprojection_rms_px:.3f} px, "
          f"{result.rms_mm:.2f} mm RMS")
    assert mm < TOLERANCE_MM and deg < TOLERANCE_DEG
    assert result.mode == "points_depth" and 0.0 < result.rms_mm < 10.0 and result.reprojection_rms_px < 1.0


@pytest.mark.parametrize(("count", "collinear", "message"), [(3, False, "at least 4 points"),
                                                             (6, True, "on one line")])
def test_points_refuses_too_few_or_collinear(count: int, collinear: bool, message: str) -> None:
    points = _known_points(np.random.default_rng(2), count)
    if collinear:
        points = np.outer(np.linspace(0.0, 1.0, count), [0.2, 0.1, 0.05]) + [0.4, 0.0, 0.0]
    with pytest.raises(CalibrationError, match=message):
        calibrate_from_points(INTRINSICS.project(CAMERA.to_camera(points)), points, INTRINSICS)


def test_board_not_found_names_the_image(scene: BoardScene) -> None:
    images = [scene.render(charuco=pose((0.0, 0.0, 0.0), (0.5, 0.0, 0.0))), scene.render()]
    with pytest.raises(BoardNotFound, match=r"not found in image 1\b"):
        calibrate_from_images(images, INTRINSICS, CHARUCO, "static_board", board_to_base=np.eye(4))


def test_board_image_is_to_scale_and_specs_are_checked() -> None:
    image = render_board_image(TABLE_BOARD, 5000.0, margin_m=0.01)
    assert image.shape == (round(0.24 * 5000) + 100, round(0.36 * 5000) + 100) and image.dtype == np.uint8
    assert render_board_image(MARKER, 5000.0, margin_m=0.0).shape == (500, 500)
    with pytest.raises(CalibrationError, match="DICT_9X9_10"):
        BoardSpec(dictionary="DICT_9X9_10")
    with pytest.raises(CalibrationError, match="smaller than square_length"):
        BoardSpec(square_length=0.03, marker_length=0.03)


def _result() -> CalibrationResult:
    points = _known_points(np.random.default_rng(4), 6)
    return calibrate_from_points(INTRINSICS.project(CAMERA.to_camera(points)), points, INTRINSICS)


def test_save_load_round_trip_and_overwrite(tmp_path: Path) -> None:
    result = _result()
    path = save_calibration(result, tmp_path / "calib" / "d435.json")
    loaded = load_calibration(path)
    np.testing.assert_array_equal(loaded.camera_to_base, result.camera_to_base)
    assert (loaded.mode, loaded.intrinsics, loaded.n_points, loaded.timestamp, loaded.marker_to_ee) == \
        (result.mode, result.intrinsics, result.n_points, result.timestamp, None)
    assert loaded.reprojection_rms_px == result.reprojection_rms_px
    with pytest.raises(CalibrationError, match="already exists"):
        save_calibration(result, path)
    save_calibration(result, path, overwrite=True)
    assert [p.name for p in path.parent.iterdir()] == ["d435.json"]    # no staging file left behind


@pytest.mark.parametrize(("content", "message"), [
    (None, "not found"),
    ("{not json", "not valid JSON"),
    ('{"format": "something else"}', "not a FARL camera calibration"),
    ("drop:n_points", "lacks the field 'n_points'"),
    ("matrix:[[1, 0, 0, 0], [0, 2, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]", "not a rigid transform"),
    ("matrix:[[1, 0, 0], [0, 1, 0], [0, 0, 1]]", "4x4"),
])
def test_malformed_files_give_one_line_errors(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "d435.json"
    if content is not None and content.startswith(("drop:", "matrix:")):
        data = _result().to_dict()
        if content.startswith("drop:"):
            del data[content.removeprefix("drop:")]
        else:
            data["camera_to_base"] = json.loads(content.removeprefix("matrix:"))
        content = json.dumps(data)
    if content is not None:
        path.write_text(content)
    with pytest.raises(CalibrationError, match=message) as caught:
        load_calibration(path)
    assert "\n" not in str(caught.value)
