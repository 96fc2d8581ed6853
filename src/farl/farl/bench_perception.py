"""`farl bench perception`: per-frame latency of the perception pipeline against the bare frame grab.

One run renders frames of a Franka task scene with the simulated D435 (the grab, timed), then
feeds each frame to every detector configuration in turn (colour filter; YOLOv8n at imgsz 320
and 640; YOLO-gated colour), so all configurations see the same frames under the same machine
load.  Per configuration: processing time (detect + localise + track, what perception adds once
a frame is there) and full time (grab + processing), p50 and p95, with the full time as a ratio
of the grab.  On a real D435 the grab is a wait for the next 30 fps frame (<= 33 ms) instead of
a ~75 ms CPU render, so processing is the figure that decides whether 5 Hz holds.

YOLO runs with an untrained YOLOv8n unless --weights names a trained detector: the arithmetic of
a forward pass does not depend on the weights (NMS on few boxes is a small part of it).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from farl.bench import percentiles
from farl_core.camera_model import CameraExtrinsics
from farl_core.franka_tasks import get_franka_task
from farl_perception.config import PerceptionConfig, YoloConfig, task_defaults
from farl_perception.pipeline import Perception
from farl_perception.topic_source import TopicSource
from farl_sim.franka_scenes.sim_source import SimSource

QUANTILES = (50, 95)


def _configurations(base: PerceptionConfig, weights: Path) -> dict[str, PerceptionConfig]:
    colourless = replace(base.colour, ranges={})
    yolo = YoloConfig(weights=str(weights))
    return {
        "colour": base,
        "yolov8n_320": replace(base, colour=colourless, yolo=replace(yolo, imgsz=320)),
        "yolov8n_640": replace(base, colour=colourless, yolo=replace(yolo, imgsz=640)),
        "yolov8n_320_gated_colour": replace(base, yolo=replace(yolo, imgsz=320)),
    }


def bench_perception(frames: int = 40, task: str = "fragile-push-wall", weights: Path | None = None,
                     seed: int = 0) -> dict[str, Any]:
    """Latency figures (ms) per configuration; see the module docstring for what is measured."""
    from farl_perception.detector_training import untrained_detector

    names = get_franka_task(task).object_names
    trained = weights is not None
    with tempfile.TemporaryDirectory() as scratch, SimSource(task, seed=seed) as source:
        weights = weights or untrained_detector(Path(scratch) / "yolov8n.pt", names)
        base = replace(task_defaults(task), extrinsics=CameraExtrinsics.from_matrix(source.camera_to_base))
        configurations = _configurations(base, weights)
        feeds = {label: TopicSource(label) for label in configurations}
        pipelines = {label: Perception(config, feeds[label], names) for label, config in configurations.items()}
        warm_up = source.read()  # the first render builds the OpenGL context: not a steady-state grab
        for label, perception in pipelines.items():  # nor is a network's first call (allocation, tracing)
            feeds[label].push(warm_up)
            perception.step()
        grabs: list[float] = []
        processing: dict[str, list[float]] = {label: [] for label in pipelines}
        rng = np.random.default_rng(seed)
        for index in tqdm(range(frames), desc="perception bench", unit="frame"):
            if index % 5 == 0:
                source.reset(rng)  # new object positions every 5 frames
            started = time.perf_counter()
            frame = source.read()
            grabs.append(time.perf_counter() - started)
            for label, perception in pipelines.items():
                feeds[label].push(frame)
                perception.step()
                assert perception.last is not None
                processing[label].append(perception.last.timing.processing_s)
    grab = percentiles(grabs, QUANTILES)
    results: dict[str, Any] = {"task": task, "frames": frames, "weights": str(weights) if trained else "untrained",
                               "grab": grab}
    for label, samples in processing.items():
        full = [g + p for g, p in zip(grabs, samples, strict=True)]
        results[label] = {"processing": percentiles(samples, QUANTILES), "full": percentiles(full, QUANTILES)}
        results[label]["full_p50_ratio_to_grab"] = results[label]["full"]["p50_ms"] / grab["p50_ms"]
        results[label]["full_p95_ratio_to_grab"] = results[label]["full"]["p95_ms"] / grab["p95_ms"]
    return results
