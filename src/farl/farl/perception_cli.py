"""`farl perception ...`: run perception live, record RGB-D bags, calibrate the camera, build and train a detector.

Each verb is a thin shell over farl_perception: it picks the camera source named on the command
line, loads the `farl_perception` section of the config on top of the task's defaults, and
reports progress and numbers.  Nothing here is needed by the ROS node, which drives the same
Perception component from topics.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from farl.bench import percentiles
from farl_core.camera_model import CameraExtrinsics
from farl_core.errors import FarlError

SOURCES = "sim | realsense[:SERIAL] | bag:PATH"


def open_source(spec: str, task: str, seed: int = 0) -> Any:
    """The camera source named by `spec` (see SOURCES)."""
    kind, _, rest = spec.partition(":")
    if kind == "sim":
        from farl_sim.franka_scenes.sim_source import SimSource

        return SimSource(task, seed=seed)
    if kind == "realsense":
        from farl_perception.realsense_source import RealSenseConfig, RealSenseSource

        return RealSenseSource(RealSenseConfig(serial=rest))
    if kind == "bag" and rest:
        from farl_perception.bag_source import BagSource

        return BagSource(rest)
    raise FarlError(f"unknown camera source '{spec}': use {SOURCES}")


def perception_setup(args: argparse.Namespace, source: Any) -> Any:
    """The task's perception config with --config's `farl_perception` section on top.

    The simulated camera's pose is known exactly, so a sim run needs no calibration; any other
    source takes the pose from the config (`extrinsics` or `calibration_file`).
    """
    from farl_perception.config import perception_config
    from farl_sim.franka_scenes.sim_source import SimSource

    config = perception_config(args.task, Path(args.config) if args.config else None)
    if isinstance(source, SimSource) and config.extrinsics is None and not config.calibration_file:
        from dataclasses import replace

        config = replace(config, extrinsics=CameraExtrinsics.from_matrix(source.camera_to_base))
    return config


def cmd_run(args: argparse.Namespace) -> int:
    """Run perception on a live or recorded camera; print rate and latency, save or show annotated frames."""
    import cv2

    from farl_core.franka_tasks import get_franka_task
    from farl_perception.pipeline import Perception, annotate
    from farl_sim.franka_scenes.sim_source import SimSource

    out = Path(args.out) if args.out else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    names = get_franka_task(args.task).object_names
    timings: list[tuple[float, float]] = []
    errors: dict[str, list[float]] = {n: [] for n in names}
    stale = {n: 0 for n in names}
    stalled = 0
    window = args.show and _can_show()
    with open_source(args.source, args.task, args.seed) as source:
        perception = Perception(perception_setup(args, source), source, names)
        period = 1.0 / perception.config.rate_hz
        started = time.monotonic()
        for index in tqdm(range(args.frames), desc="perception", unit="frame", disable=not args.progress):
            tick = time.monotonic()
            objects = perception.step()
            report = perception.last
            assert report is not None
            for estimate in objects.objects:
                stale[estimate.name] += estimate.stale
            if report.frame is None:
                stalled += 1
                tqdm.write(f"stalled: {perception.status.message}")
            else:
                timings.append((report.timing.grab_s, report.timing.processing_s))
                truth = source.object_states() if isinstance(source, SimSource) else {}
                for estimate in objects.objects:
                    if estimate.name in truth and not estimate.stale:
                        errors[estimate.name].append(float(np.linalg.norm(estimate.position - truth[estimate.name])))
                image = annotate(report.frame, report.detections, objects)
                if out is not None:
                    cv2.imwrite(str(out / f"frame_{index:05d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
                if window:
                    cv2.imshow("farl perception", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
                    if cv2.waitKey(1) & 0xFF == ord("q"):
                        break
            time.sleep(max(0.0, period - (time.monotonic() - tick)))
        elapsed = time.monotonic() - started
    summary = _run_summary(args, timings, errors, stale, stalled, elapsed)
    print(json.dumps(summary, indent=2))
    if out is not None:
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        print(f"annotated frames and summary.json in {out}")
    return 1 if stalled == args.frames else 0


def _can_show() -> bool:
    """OpenCV windows need a GUI build (opencv-python-headless has none) and a display."""
    import os

    import cv2

    if not os.environ.get("DISPLAY"):
        return False
    try:
        cv2.namedWindow("farl perception")
    except cv2.error:
        return False
    return True


def _run_summary(args: argparse.Namespace, timings: list[tuple[float, float]], errors: dict[str, list[float]],
                 stale: dict[str, int], stalled: int, elapsed: float) -> dict[str, Any]:
    grab = [g for g, _ in timings]
    processing = [p for _, p in timings]
    summary: dict[str, Any] = {
        "source": args.source, "task": args.task, "frames": args.frames, "stalled_steps": stalled,
        "rate_hz": round(args.frames / elapsed, 2) if elapsed > 0 else None,
        "grab": percentiles(grab) if grab else None,
        "processing": percentiles(processing) if processing else None,
        "stale_steps": stale,
    }
    measured = {n: e for n, e in errors.items() if e}
    if measured:  # sim only: the scene knows where everything really is
        summary["position_error_mm"] = {n: {"median": round(float(np.median(e)) * 1000, 1),
                                            "p95": round(float(np.percentile(e, 95)) * 1000, 1)}
                                        for n, e in measured.items()}
    return summary


def cmd_record(args: argparse.Namespace) -> int:
    """Record RGB-D frames from a camera into a rosbag2 (MCAP), replayable with --source bag:PATH."""
    from farl_perception.bag_source import write_rgbd_bag

    with open_source(args.source, args.task, args.seed) as source:
        frames = (source.read(2.0) for _ in tqdm(range(args.frames), desc="recording", unit="frame"))
        count = write_rgbd_bag(args.out, frames)
    print(f"recorded {count} frames to {args.out}")
    return 0


def cmd_board(args: argparse.Namespace) -> int:
    """Write the printable calibration board as a PNG at the given resolution."""
    import cv2

    from farl_perception.calibration import render_board_image

    spec = _board_spec(args.board)
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise FarlError(f"{out} exists: choose another --out or pass --overwrite")
    image = render_board_image(spec, pixels_per_metre=args.dpi / 0.0254)
    cv2.imwrite(str(out), image)
    width, height = spec.size
    print(f"board {width * 100:.1f} x {height * 100:.1f} cm written to {out}: print it at {args.dpi} dpi, "
          "no scaling, and check one square with a ruler")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Estimate camera_to_base from board images (static board or board on the gripper) or known points."""
    from farl_perception.calibration import calibrate_from_images, calibrate_from_points, save_calibration

    intrinsics = _intrinsics(args)
    if args.mode in ("points", "points_depth"):
        points = _read_yaml(args.points)
        try:
            pixels = np.asarray([p["pixel"] for p in points["points"]], dtype=float)
            base = np.asarray([p["base"] for p in points["points"]], dtype=float)
            depths = np.asarray([p["depth_m"] for p in points["points"]], dtype=float) \
                if args.mode == "points_depth" else None
        except (KeyError, TypeError, ValueError) as exc:
            raise FarlError(f"{args.points}: expected 'points: [{{pixel: [u, v], base: [x, y, z], depth_m: d}}, "
                            f"...]' ({exc})") from None
        result = calibrate_from_points(pixels, base, intrinsics, depths_m=depths)
    else:
        if not args.images:
            raise FarlError(f"--mode {args.mode} needs --images (board photos)")
        poses = _read_yaml(args.poses) if args.poses else {}
        result = calibrate_from_images(
            [Path(p) for p in args.images], intrinsics, _board_spec(args.board), args.mode,
            board_to_base=poses.get("board_to_base"), ee_to_base=poses.get("ee_to_base"))
    path = save_calibration(result, Path(args.out), overwrite=args.overwrite)
    residual = (f"reprojection RMS {result.reprojection_rms_px:.2f} px" if result.reprojection_rms_px is not None
                else "")
    if result.rms_mm is not None:
        residual += f"{', ' if residual else ''}3-D RMS {result.rms_mm:.1f} mm"
    print(f"camera_to_base from {result.n_views} view(s), {result.n_points} points ({residual}) written to {path}; "
          "set farl_perception.calibration_file to it")
    return 0


def _board_spec(path: str | None) -> Any:
    from farl_perception.calibration import BoardSpec

    if path is None:
        return BoardSpec()
    try:
        return BoardSpec(**_read_yaml(path))
    except TypeError as exc:
        raise FarlError(f"{path}: not a board description ({exc}); keys: kind, dictionary, squares_x, squares_y, "
                        "square_length, marker_length, marker_id") from None


def _intrinsics(args: argparse.Namespace) -> Any:
    """The colour intrinsics: from a YAML file (fx, fy, cx, cy, width, height) or the D435 640x480 defaults."""
    from farl_core.camera_model import CameraIntrinsics

    if not args.intrinsics:
        return CameraIntrinsics()
    try:
        return CameraIntrinsics(**_read_yaml(args.intrinsics))
    except TypeError as exc:
        raise FarlError(f"{args.intrinsics}: expected keys fx, fy, cx, cy, width, height ({exc})") from None


def _read_yaml(path: str) -> Any:
    import yaml

    file = Path(path)
    if not file.is_file():
        raise FarlError(f"file not found: {file}")
    try:
        return yaml.safe_load(file.read_text())
    except yaml.YAMLError as exc:
        raise FarlError(f"{file}: invalid YAML ({str(exc).splitlines()[0]})") from None


def cmd_synth(args: argparse.Namespace) -> int:
    from farl_sim.franka_scenes.synth import synthesize

    data_yaml = synthesize(args.tasks, args.out, args.images, seed=args.seed, imgsz=args.imgsz,
                           overwrite=args.overwrite)
    print(f"dataset written: {data_yaml} (train with: farl perception train-detector --data {data_yaml})")
    return 0


def cmd_train_detector(args: argparse.Namespace) -> int:
    from farl_perception.detector_training import train_detector

    trained = train_detector(args.data, args.out, model=args.model, epochs=args.epochs, imgsz=args.imgsz,
                             batch=args.batch, device=args.device, seed=args.seed, overwrite=args.overwrite)
    print(f"detector weights: {trained.weights} ({json.dumps(trained.metrics)}); set farl_perception.yolo.weights "
          "to this path")
    return 0


def add_perception_parser(verbs: Any) -> None:
    """Register `farl perception {run,record,board,calibrate,synth,train-detector}`."""
    perception = verbs.add_parser("perception", help="camera, detectors, 3-D object states, calibration")
    actions = perception.add_subparsers(dest="perception_verb", required=True, metavar="ACTION")

    source = argparse.ArgumentParser(add_help=False)
    source.add_argument("--source", default="sim", help=f"camera: {SOURCES} (default: sim)")
    source.add_argument("--task", default="fragile-push-wall",
                        help="Franka task whose objects to find (fragile-push-wall, disturbed-push, bounded-soccer)")
    source.add_argument("--seed", type=int, default=0, help="sim: object placement seed")

    run = actions.add_parser("run", parents=[source], help="detect and localise the task's objects live")
    run.add_argument("--config", help="parameter file with a farl_perception section (overrides the task defaults)")
    run.add_argument("--frames", type=int, default=50, help="steps to run (default 50, 10 s at 5 Hz)")
    run.add_argument("--out", help="folder for annotated frames and summary.json")
    run.add_argument("--show", action="store_true", help="OpenCV window (needs a display and a GUI OpenCV build)")
    run.add_argument("--no-progress", dest="progress", action="store_false")
    run.set_defaults(func=cmd_run)

    record = actions.add_parser("record", parents=[source], help="record RGB-D frames to a rosbag2 (MCAP)")
    record.add_argument("--frames", type=int, default=50)
    record.add_argument("--out", required=True, help="bag folder to create (never overwritten)")
    record.set_defaults(func=cmd_record)

    board = actions.add_parser("board", help="write the printable calibration board (PNG)")
    board.add_argument("--board", help="board YAML (kind, dictionary, squares_x, ...; default ChArUco 7x5, 4 cm)")
    board.add_argument("--dpi", type=int, default=300)
    board.add_argument("--out", required=True, help="PNG file")
    board.add_argument("--overwrite", action="store_true")
    board.set_defaults(func=cmd_board)

    calibrate = actions.add_parser("calibrate", help="camera-to-base extrinsics from board images or known points")
    calibrate.add_argument("--mode", required=True, choices=["static_board", "hand_eye", "points", "points_depth"])
    calibrate.add_argument("--images", nargs="+", help="board photos (static_board, hand_eye)")
    calibrate.add_argument("--board", help="board YAML (default: the `farl perception board` default)")
    calibrate.add_argument("--poses", help="YAML: board_to_base (4x4, or one per image) for static_board; "
                           "ee_to_base (one 4x4 per image) for hand_eye")
    calibrate.add_argument("--points", help="YAML: points: [{pixel: [u, v], base: [x, y, z], depth_m: d}, ...]")
    calibrate.add_argument("--intrinsics", help="YAML: fx, fy, cx, cy, width, height (default: D435 640x480)")
    calibrate.add_argument("--out", required=True, help="calibration JSON to write")
    calibrate.add_argument("--overwrite", action="store_true")
    calibrate.set_defaults(func=cmd_calibrate)

    synth = actions.add_parser("synth", help="render a labelled YOLO dataset from the simulated task scenes")
    synth.add_argument("--tasks", nargs="+", default=["fragile-push-wall", "disturbed-push", "bounded-soccer"])
    synth.add_argument("--images", type=int, default=500)
    synth.add_argument("--imgsz", type=int, default=640)
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--out", required=True, help="dataset folder to create")
    synth.add_argument("--overwrite", action="store_true")
    synth.set_defaults(func=cmd_synth)

    train = actions.add_parser("train-detector", help="fine-tune YOLOv8 on a dataset (never downloads weights)")
    train.add_argument("--data", required=True, help="data.yaml of `farl perception synth` (or your own)")
    train.add_argument("--out", required=True, help="run folder to create")
    train.add_argument("--model", default="yolov8n.yaml", help="model definition (from scratch) or a weights file")
    train.add_argument("--epochs", type=int, default=50)
    train.add_argument("--imgsz", type=int, default=320)
    train.add_argument("--batch", type=int, default=16)
    train.add_argument("--device", default="cpu")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--overwrite", action="store_true")
    train.set_defaults(func=cmd_train_detector)
