"""The learned detector: YOLOv8 through ultralytics, loaded from a local weights file only.

Weights are trained for the lab's objects by `farl perception train-detector`; there is no
useful pretrained fallback (COCO has no "fragile cup next to a wall"), so a missing file is a
one-line FarlError saying how to make one, and nothing is ever downloaded.  ultralytics is
switched to its offline mode (no online checks, no usage events, no auto-install of packages)
and to its restricted checkpoint loading (torch.load with weights_only=True and an allow-list
of model classes: a .pt file is a pickle, and the project never unpickles arbitrary objects).
Both are environment switches ultralytics reads when it is first imported, which is why it is
imported here, lazily, after setting them; the colour-only pipeline never imports it.

Boxes: ultralytics' boxes bound pixel edges (a full 640-px-wide image spans 0..640); Detection
boxes use pixel-centre coordinates like the camera model (pixel 0 is at 0.0), so 0.5 is
subtracted.  A segmentation model's masks come at the original image size (retina_masks).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from farl_core.errors import FarlError
from farl_perception.config import YoloConfig
from farl_perception.objects import Detection, DetectionSource

ULTRALYTICS_OFFLINE = {"YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "false", "ULTRALYTICS_SAFE_LOAD": "1"}


def ultralytics_yolo() -> Any:
    """ultralytics' YOLO class, imported offline, without auto-install, with restricted checkpoint loading.

    The switches only take effect if this is the process's first import of ultralytics: import it
    through here (the detector-training code too).
    """
    for key, value in ULTRALYTICS_OFFLINE.items():
        os.environ.setdefault(key, value)
    from ultralytics import YOLO

    return YOLO


class YoloDetector:
    """Finds the task objects with a YOLOv8 model (detection or segmentation)."""

    def __init__(self, config: YoloConfig, objects: tuple[str, ...]) -> None:
        path = Path(config.weights).expanduser()
        if not path.is_file():
            raise FarlError(f"YOLO weights not found: {path}; train them with `farl perception train-detector` "
                            "(nothing is downloaded) or set yolo.weights to an existing .pt file")
        yolo = ultralytics_yolo()
        try:
            self._model = yolo(str(path))
        except (TypeError, ValueError, RuntimeError, OSError, ModuleNotFoundError) as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise FarlError(f"cannot load YOLO weights {path}: {first_line}") from exc
        self._config = config
        renamed = config.class_names
        # detector class id -> task object name, for the classes that are task objects
        self._classes = {int(i): renamed.get(n, n) for i, n in self._model.names.items()
                         if renamed.get(n, n) in objects}
        if not self._classes:
            raise FarlError(f"YOLO weights {path} detect {sorted(self._model.names.values())[:8]}, none of which is "
                            f"a task object ({', '.join(objects)}): set yolo.class_names to map them")

    @property
    def names(self) -> tuple[str, ...]:
        """The task objects this detector can find."""
        return tuple(sorted(set(self._classes.values())))

    def detect(self, rgb: np.ndarray) -> dict[str, Detection]:
        """The highest-scoring detection of each task object in an RGB image."""
        config = self._config
        bgr = np.ascontiguousarray(rgb[..., ::-1])  # ultralytics reads numpy images as OpenCV's BGR
        result = self._model.predict(bgr, conf=config.conf, iou=config.iou, imgsz=config.imgsz,
                                     device=config.device, retina_masks=True, verbose=False)[0]
        boxes = result.boxes
        classes = boxes.cls.cpu().numpy().astype(int)
        scores = boxes.conf.cpu().numpy()
        corners = boxes.xyxy.cpu().numpy() - 0.5
        masks = None if result.masks is None else result.masks.data.cpu().numpy() > 0.5
        best: dict[str, Detection] = {}
        for i in np.argsort(-scores):
            name = self._classes.get(int(classes[i]))
            if name is None or name in best:
                continue
            best[name] = Detection(name=name, score=float(scores[i]), source=DetectionSource.YOLO,
                                   box=tuple(float(v) for v in corners[i]),
                                   mask=None if masks is None else masks[i])
        return best
