"""`farl perception ...` end to end on the simulated D435: run, record + replay, board, calibrate, bench."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from farl import cli
from farl_core.camera_model import CameraExtrinsics, CameraIntrinsics


def calibrate_points(tmp_path: Path, truth: CameraExtrinsics, out: Path) -> Path:
    """`farl perception calibrate --mode points` from 12 exactly projected known points."""
    rng = np.random.default_rng(0)
    base = np.column_stack([rng.uniform(0.3, 0.7, 12), rng.uniform(-0.25, 0.25, 12), rng.uniform(0.0, 0.3, 12)])
    pixels = CameraIntrinsics().project(truth.to_camera(base))
    points = tmp_path / "points.yaml"
    points.write_text(yaml.safe_dump({"points": [{"pixel": p.tolist(), "base": b.tolist()}
                                                 for p, b in zip(pixels, base, strict=True)]}))
    assert cli.main(["perception", "calibrate", "--mode", "points", "--points", str(points), "--out", str(out)]) == 0
    return out


def test_run_on_sim_reports_accuracy_latency_and_saves_frames(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert cli.main(["perception", "run", "--source", "sim", "--task", "bounded-soccer", "--frames", "3",
                     "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stalled_steps"] == 0 and summary["stale_steps"] == {"ball": 0}
    assert summary["position_error_mm"]["ball"]["p95"] < 10.0
    assert summary["processing"]["p50_ms"] > 0
    assert len(list(out.glob("frame_*.png"))) == 3


def test_recorded_bag_replays_through_perception_and_then_stalls(tmp_path: Path) -> None:
    bag = tmp_path / "frames"
    assert cli.main(["perception", "record", "--source", "sim", "--frames", "3", "--out", str(bag)]) == 0
    assert cli.main(["perception", "record", "--source", "sim", "--frames", "3", "--out", str(bag)]) == 2  # kept
    # A bag carries no camera pose: calibrate from known points seen by the camera that took the frames.
    from farl_sim.franka_scenes.camera import DEFAULT_EXTRINSICS

    calibration = calibrate_points(tmp_path, DEFAULT_EXTRINSICS, tmp_path / "camera.json")
    config = tmp_path / "farl.yaml"
    config.write_text(yaml.safe_dump({"farl_perception": {"ros__parameters": {"calibration_file": str(calibration)}}}))
    out = tmp_path / "replay"
    code = cli.main(["perception", "run", "--source", f"bag:{bag}", "--config", str(config), "--frames", "5",
                     "--out", str(out), "--no-progress"])
    summary = json.loads((out / "summary.json").read_text())
    assert code == 0 and summary["stalled_steps"] == 2  # three frames, then the bag's end is a stall
    assert summary["stale_steps"]["object"] == 2


def test_board_and_point_calibration_from_the_command_line(tmp_path: Path) -> None:
    board = tmp_path / "board.png"
    assert cli.main(["perception", "board", "--out", str(board), "--dpi", "100"]) == 0
    assert board.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    truth = CameraExtrinsics.look_at((1.0, 0.2, 0.7), (0.5, 0.0, 0.0))
    out = calibrate_points(tmp_path, truth, tmp_path / "calibration.json")
    matrix = np.asarray(json.loads(out.read_text())["camera_to_base"])
    assert np.allclose(matrix[:3, 3], truth.position, atol=1e-3)
    points = tmp_path / "points.yaml"
    assert cli.main(["perception", "calibrate", "--mode", "points", "--points", str(points), "--out", str(out)]) == 2


def test_unknown_source_and_missing_weights_are_one_line_errors(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["perception", "run", "--source", "webcam", "--frames", "1"]) == 2
    config = tmp_path / "farl.yaml"
    config.write_text(yaml.safe_dump({"farl_perception": {"ros__parameters": {"yolo": {"weights": "nope.pt"}}}}))
    assert cli.main(["perception", "run", "--config", str(config), "--frames", "1", "--no-progress"]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert errors[0].startswith("farl: error: unknown camera source 'webcam'")
    assert "YOLO weights not found: nope.pt" in errors[1] and len(errors) == 2


def test_bench_perception_times_every_configuration(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    assert cli.main(["bench", "perception", "--frames", "2", "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    for label in ("colour", "yolov8n_320", "yolov8n_640", "yolov8n_320_gated_colour"):
        assert results[label]["full"]["p95_ms"] >= results[label]["processing"]["p95_ms"] > 0
        assert results[label]["full_p95_ratio_to_grab"] > 1.0
