"""Training the YOLOv8 detector offline: a tiny run end to end, with the network blocked in-process.

Detection quality: this run (48 synthetic images at 160x120, 3 epochs from the yolov8n.yaml
definition, no pretrained weights) is a pipeline check, not a detector.  Measured on a shared
2-core machine: 1.7-2 s per epoch when quiet, ~7 s under load; validation mAP50 = 0.0; on a
held-out frame the most confident boxes score ~0.003 (8 epochs on 60 images did no better).
A useful detector needs hundreds of epochs or a pretrained weights file to fine-tune.  So the
tests assert what such a run guarantees: it completes without touching the network, writes
finite metrics and loadable weights, and those weights produce (low-confidence) boxes of the
dataset's classes.
"""

from __future__ import annotations

import json
import math
import os
import socket
import traceback
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from farl_core.errors import FarlError
from farl_perception.config import YoloConfig
from farl_perception.detector_training import TrainedDetector, train_detector
from farl_perception.yolo_detector import YoloDetector
from farl_sim.franka_scenes.synth import SceneSynthesizer, class_names, synthesize

TASKS = ("fragile-push-wall", "disturbed-push", "bounded-soccer")
IMGSZ = 160
EPOCHS = 3


class NetworkAttempt(BaseException):
    """Raised on any network access: a BaseException, so no `except Exception` in a library can swallow it."""


@pytest.fixture(scope="module")
def network_attempts() -> Iterator[list[str]]:
    """Block name resolution and inet connections for the whole module, recording who tried."""
    attempts: list[str] = []

    def refuse(what: object, *args: object, **kwargs: object) -> None:
        attempts.append(f"{what}: {traceback.format_stack(limit=6)}")
        raise NetworkAttempt(f"network access attempted: {what}")

    real_connect = socket.socket.connect

    def connect(sock: socket.socket, address: object) -> None:
        if sock.family == socket.AF_UNIX:
            return real_connect(sock, address)
        refuse(address)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket, "getaddrinfo", refuse)
        patch.setattr(socket.socket, "connect", connect)
        patch.setattr(socket.socket, "connect_ex", lambda sock, address: refuse(address))
        yield attempts


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, network_attempts: list[str]) -> TrainedDetector:
    root = tmp_path_factory.mktemp("detector")
    data_yaml = synthesize(TASKS, root / "dataset", 48, seed=3, imgsz=IMGSZ, val_fraction=0.25, progress=False)
    result = train_detector(data_yaml, root / "detector", epochs=EPOCHS, imgsz=IMGSZ, batch=8, seed=0)
    assert network_attempts == []
    return result


def test_training_writes_weights_and_finite_metrics(trained: TrainedDetector) -> None:
    assert trained.weights.name == "detector.pt" and trained.weights.stat().st_size > 1e6
    on_disk = json.loads((trained.weights.parent / "metrics.json").read_text())
    assert on_disk == trained.metrics
    for key in ("mAP50", "mAP50-95", "precision", "recall"):
        assert math.isfinite(on_disk[key]) and 0.0 <= on_disk[key] <= 1.0, key
    assert set(on_disk["per_class_mAP50-95"]) <= set(class_names(TASKS))
    assert on_disk["epochs"] == EPOCHS and on_disk["seconds_per_epoch"] > 0.0
    assert not list(trained.weights.parent.glob(".*.tmp"))


def test_trained_weights_run_on_a_held_out_frame(trained: TrainedDetector, network_attempts: list[str]) -> None:
    """The product's detector loads the weights and finds (low-confidence, see the module docstring) boxes."""
    objects = ("object", "obstacle")
    detector = YoloDetector(YoloConfig(weights=str(trained.weights), conf=0.001, imgsz=IMGSZ), objects)
    assert detector.names == objects
    with SceneSynthesizer("disturbed-push", class_names(TASKS), imgsz=IMGSZ) as synth:
        frame = synth.render(np.random.default_rng(10_000))  # not one of the dataset's seed sequences
    detections = detector.detect(frame.rgb)
    assert len(detections) >= 1 and set(detections) <= set(objects)
    for detection in detections.values():
        x0, y0, x1, y1 = detection.box
        assert -1.0 <= x0 < x1 <= synth.width and -1.0 <= y0 < y1 <= synth.height
        assert 0.0 < detection.score <= 1.0
    assert network_attempts == []


def test_existing_results_are_kept_unless_overwrite(trained: TrainedDetector) -> None:
    before = trained.weights.read_bytes()
    with pytest.raises(FarlError, match="already holds detector results.*overwrite"):
        train_detector(trained.metrics["data"], trained.weights.parent, epochs=1, imgsz=IMGSZ)
    assert trained.weights.read_bytes() == before


def test_missing_inputs_fail_in_one_line(trained: TrainedDetector, tmp_path: Path) -> None:
    with pytest.raises(FarlError, match="no dataset description"):
        train_detector(tmp_path / "nowhere" / "data.yaml", tmp_path / "out")
    with pytest.raises(FarlError, match="weights file yolov8n.pt not found.*nothing is downloaded"):
        train_detector(trained.metrics["data"], tmp_path / "out", model="yolov8n.pt")
    moved = tmp_path / "data.yaml"
    moved.write_text((Path(trained.metrics["data"]).read_text()).replace("images/val", "images/missing"))
    with pytest.raises(FarlError, match="val images at .*does not exist"):
        train_detector(moved, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_checkpoint_with_arbitrary_objects_is_refused_unexecuted(trained: TrainedDetector, tmp_path: Path) -> None:
    marker = tmp_path / "executed"

    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return os.mkdir, (str(marker),)

    weights = tmp_path / "evil.pt"
    torch.save({"model": Payload()}, weights)
    with pytest.raises(FarlError, match="not a plain ultralytics checkpoint"):
        train_detector(trained.metrics["data"], tmp_path / "out", model=weights)
    assert not marker.exists()
