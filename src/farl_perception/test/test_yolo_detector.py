"""The YOLO detector's call path with tiny untrained nets, and the fusion rule with a stand-in detector.

Accuracy of a trained detector belongs to the detector-training tests; here an untrained YOLOv8n
(built from ultralytics' packaged model definition, no download) is saved to a .pt and loaded back
through YoloDetector, with conf 0 so that its random boxes come out, to check types, class mapping,
masks and that nothing touches the network.
"""

from __future__ import annotations

import socket
from pathlib import Path

import cv2
import numpy as np
import pytest

from farl_core.errors import FarlError
from farl_perception.colour_filter import ColourFilter
from farl_perception.config import ColourFilterConfig, ColourRange, YoloConfig
from farl_perception.detector_training import untrained_detector
from farl_perception.fusion import ObjectDetector
from farl_perception.objects import Detection, DetectionSource
from farl_perception.yolo_detector import YoloDetector, ultralytics_yolo

OBJECTS = ("object", "obstacle", "ball")
CLASSES = {0: "object", 1: "vase", 2: "ball"}   # "vase" is mapped to the task's "obstacle" by config
RED = ColourRange((170, 100, 40), (8, 255, 255))


@pytest.fixture()
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record (and refuse) every name lookup and connection attempt."""
    attempts: list[str] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(repr(args[:2]))
        raise OSError("network access in a test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts


def _tiny_weights(directory: Path, definition: str) -> Path:
    """An untrained 3-class net from ultralytics' packaged definition (no download)."""
    return untrained_detector(directory / definition.replace(".yaml", ".pt"), [CLASSES[i] for i in range(3)],
                              definition)


@pytest.fixture(scope="module", params=["yolov8n.yaml", "yolov8n-seg.yaml"])
def weights(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _tiny_weights(tmp_path_factory.mktemp("yolo"), request.param)


def test_packaged_definition_builds_offline(no_network: list[str]) -> None:
    model = ultralytics_yolo()("yolov8n.yaml")
    assert model.task == "detect" and len(model.names) == 80
    assert no_network == []


def test_detects_through_saved_weights(weights: Path, no_network: list[str]) -> None:
    config = YoloConfig(weights=str(weights), class_names={"vase": "obstacle"}, conf=0.0, imgsz=160)
    detector = YoloDetector(config, ("object", "obstacle"))     # class 2, "ball", is not a task object here
    assert detector.names == ("object", "obstacle")
    rgb = np.random.default_rng(0).integers(0, 255, size=(120, 160, 3), dtype=np.uint8)
    detections = detector.detect(rgb)
    assert no_network == []
    assert detections and set(detections) <= {"object", "obstacle"}
    segmenting = "seg" in weights.name
    for name, detection in detections.items():
        assert isinstance(detection, Detection) and detection.name == name
        assert detection.source is DetectionSource.YOLO and 0.0 <= detection.score <= 1.0
        x0, y0, x1, y1 = detection.box
        assert -0.5 <= x0 <= x1 <= 159.5 and -0.5 <= y0 <= y1 <= 119.5
        if segmenting:
            assert detection.mask.shape == (120, 160) and detection.mask.dtype == bool
        else:
            assert detection.mask is None


def test_weights_without_task_classes_are_refused(weights: Path) -> None:
    with pytest.raises(FarlError, match="none of which is a task object"):
        YoloDetector(YoloConfig(weights=str(weights)), ("wall",))


def test_missing_weights_is_a_one_line_error(tmp_path: Path) -> None:
    missing = tmp_path / "detector" / "best.pt"
    with pytest.raises(FarlError) as error:
        YoloDetector(YoloConfig(weights=str(missing)), OBJECTS)
    message = str(error.value)
    assert "\n" not in message and str(missing) in message and "farl perception train-detector" in message


def test_unreadable_weights_is_a_one_line_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(FarlError, match="cannot load YOLO weights") as error:
        YoloDetector(YoloConfig(weights=str(broken)), OBJECTS)
    assert "\n" not in str(error.value)


class _Boxes:
    """Stands in for a trained YoloDetector: fixed boxes."""

    def __init__(self, boxes: dict[str, tuple[float, float, float, float]], names: tuple[str, ...]) -> None:
        self._boxes, self.names = boxes, names

    def detect(self, rgb: np.ndarray) -> dict[str, Detection]:
        return {n: Detection(n, 0.8, DetectionSource.YOLO, box=b) for n, b in self._boxes.items()}


def _two_red_discs() -> np.ndarray:
    rgb = np.zeros((200, 300, 3), dtype=np.uint8)
    rgb[:] = (60, 100, 160)
    cv2.circle(rgb, (60, 60), 25, (230, 20, 20), thickness=-1)      # a red look-alike, larger
    cv2.circle(rgb, (220, 140), 15, (230, 20, 20), thickness=-1)    # the object
    return rgb


def test_fusion_box_gates_the_colour_mask() -> None:
    colour = ColourFilter(ColourFilterConfig(ranges={"object": RED}))
    yolo = _Boxes({"object": (195.0, 115.0, 245.0, 165.0)}, ("object",))
    fused = ObjectDetector(colour, yolo)
    assert fused.source is DetectionSource.FUSED
    detection = fused.detect(_two_red_discs())["object"]
    assert detection.source is DetectionSource.FUSED and detection.score == 0.8
    assert detection.box == (195.0, 115.0, 245.0, 165.0)
    rows, cols = np.nonzero(detection.mask)
    assert cols.min() >= 195 and rows.min() >= 115                      # the look-alike's pixels dropped
    assert detection.mask.sum() == pytest.approx(np.pi * 15 ** 2, rel=0.1)
    assert colour.detect(_two_red_discs())["object"].mask[60, 60]       # alone, colour takes the look-alike


def test_fusion_without_a_box_is_no_detection() -> None:
    colour = ColourFilter(ColourFilterConfig(ranges={"object": RED}))
    assert ObjectDetector(colour, _Boxes({}, ("object",))).detect(_two_red_discs()) == {}


def test_fusion_keeps_the_box_without_colour_and_colour_for_unlearned_objects() -> None:
    colour = ColourFilter(ColourFilterConfig(ranges={"object": RED, "ball": ColourRange((8, 80, 40), (22, 255, 255))}))
    rgb = _two_red_discs()
    cv2.circle(rgb, (150, 40), 12, (255, 120, 5), thickness=-1)          # an orange ball
    yolo = _Boxes({"object": (10.0, 150.0, 40.0, 190.0)}, ("object",))   # a box where nothing is red
    detections = ObjectDetector(colour, yolo).detect(rgb)
    assert detections["object"].source is DetectionSource.YOLO and detections["object"].mask is None
    assert detections["ball"].source is DetectionSource.COLOUR          # YOLO was not trained on it
