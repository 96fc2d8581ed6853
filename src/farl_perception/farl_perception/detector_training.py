"""Fine-tune a YOLOv8 detector on a YOLO dataset (e.g. synth.synthesize's), offline and reproducibly.

ultralytics reaches for the network in several places; each is shut here, because a lab PC or a
robot may have no internet and a training run must never stall on (or be changed by) a download:
  import      `ultralytics.utils.ONLINE` is a DNS probe made at first import; YOLO_OFFLINE=1 (set
              by yolo_detector.ultralytics_yolo before that import, and checked here) makes it
              False, which also turns off the PyPI update check, usage analytics and Sentry, and
              makes any download fail at once; YOLO_AUTOINSTALL=false stops pip installs of
              missing optional requirements;
  model       a bare weights name ("yolov8n.pt") is fetched from GitHub: only model definitions
              (built from scratch) and existing local .pt files are accepted;
  AMP check   check_amp downloads a reference model: amp=False (a CPU has no mixed precision);
  plots       label plots download the Arial font: plots=False;
  dataset     check_det_dataset asks for Arial.ttf on every call, plots or not, with an HTTP HEAD
              to ultralytics' asset server when no Arial is installed: for the duration of a run
              its font lookup is replaced by one that answers "no font" (the font only draws plot
              labels); a data.yaml whose images are missing may name a download URL or script,
              so the image folders are checked here first;
  Platform    training metrics stream to Ultralytics Platform only with an API key: none is set.
Checkpoints: ULTRALYTICS_SAFE_LOAD=1 (also set there) makes every .pt load use
torch.load(weights_only=True) with ultralytics' allow-list of model classes, so no model file is
ever unpickled freely: a checkpoint holding anything else is refused, not executed.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from farl_core.atomic_files import write_atomic
from farl_core.errors import FarlError
from farl_perception.yolo_detector import ULTRALYTICS_OFFLINE, ultralytics_yolo

WEIGHTS_NAME = "detector.pt"
METRICS_NAME = "metrics.json"
RUN_NAME = "run"
"""ultralytics' own run folder inside out_dir (its results.csv, args.yaml, best.pt and last.pt)."""


@dataclass(frozen=True)
class TrainedDetector:
    """Where a training run left its best weights and its validation metrics (also in metrics.json)."""

    weights: Path
    metrics: dict[str, Any]


def _offline_ultralytics() -> ModuleType:
    """ultralytics with yolo_detector's switches, checked: a training run must never go online or unpickle."""
    ultralytics_yolo()
    import ultralytics
    from ultralytics import utils

    if utils.ONLINE or utils.AUTOINSTALL or not utils.SAFE_LOAD:
        switches = " ".join(f"{key}={value}" for key, value in ULTRALYTICS_OFFLINE.items())
        raise FarlError("ultralytics was imported before its offline switches were set: import it through "
                        f"farl_perception.yolo_detector.ultralytics_yolo, or export {switches}")
    return ultralytics


def _no_font(font: str = "Arial.ttf") -> None:
    """Stands in for ultralytics' check_font during training: fonts only label plots, which are off."""
    del font


@contextmanager
def _offline_dataset_check() -> Iterator[None]:
    from ultralytics.data import utils as data_utils

    original = data_utils.check_font
    data_utils.check_font = _no_font
    try:
        yield
    finally:
        data_utils.check_font = original


def _check_dataset(data_yaml: Path) -> None:
    """A readable data.yaml whose image folders exist (for missing ones, ultralytics runs its `download` entry)."""
    if not data_yaml.is_file():
        raise FarlError(f"no dataset description at {data_yaml}: give the data.yaml that synthesize wrote "
                        "(or another YOLO detection dataset's)")
    try:
        data = yaml.safe_load(data_yaml.read_text())
    except yaml.YAMLError as exc:
        raise FarlError(f"{data_yaml} is not valid YAML ({str(exc).splitlines()[0]}): regenerate the dataset") from exc
    if not isinstance(data, dict) or not data.get("names") or not data.get("train") or not data.get("val"):
        raise FarlError(f"{data_yaml} needs 'names', 'train' and 'val' entries (the YOLO dataset format)")
    root = Path(data.get("path") or data_yaml.parent)
    for split in ("train", "val"):
        folder = root / data[split]
        if not folder.exists():
            raise FarlError(f"{data_yaml} puts its {split} images at {folder}, which does not exist (nothing is "
                            "downloaded): regenerate the dataset or fix its 'path'")


def _model_source(model: str | Path) -> str:
    """A model definition name/path, or an existing weights file: never something ultralytics would download."""
    text = str(model)
    if text.endswith((".yaml", ".yml")):
        return text
    if not Path(text).is_file():
        raise FarlError(f"weights file {text} not found: give a local .pt file, or a model definition such as "
                        "yolov8n.yaml to train from scratch (nothing is downloaded)")
    return str(Path(text).absolute())


def train_detector(data_yaml: str | Path, out_dir: str | Path, model: str | Path = "yolov8n.yaml", epochs: int = 50,
                   imgsz: int = 640, batch: int = 16, device: str = "cpu", seed: int = 0,
                   overwrite: bool = False) -> TrainedDetector:
    """Train a YOLOv8 detector and return its best weights (out_dir/detector.pt) and validation metrics.

    `model` is a definition (default yolov8n.yaml: from scratch, nothing downloaded) or a local .pt
    file to fine-tune.  Metrics are ultralytics' validator's on the dataset's val split for the best
    epoch: mAP50, mAP50-95, precision, recall, per-class mAP50-95, plus timing; they go to
    out_dir/metrics.json.  Seeded, deterministic algorithms, no data-loader workers, so a rerun on
    the same machine repeats.  Existing results in out_dir are replaced only with `overwrite=True`.
    """
    data_yaml = Path(data_yaml).absolute()
    _check_dataset(data_yaml)
    source = _model_source(model)
    out = Path(out_dir).absolute()
    weights, metrics_file, run_dir = out / WEIGHTS_NAME, out / METRICS_NAME, out / RUN_NAME
    existing = [p.name for p in (weights, metrics_file, run_dir) if p.exists()]
    if existing and not overwrite:
        raise FarlError(f"{out} already holds detector results ({', '.join(existing)}): choose another output "
                        "folder, or pass overwrite")
    if epochs < 1 or batch < 1 or imgsz < 32:
        raise FarlError(f"need epochs >= 1, batch >= 1 and imgsz >= 32 (got {epochs}, {batch}, {imgsz})")
    ultralytics = _offline_ultralytics()
    shutil.rmtree(run_dir, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with _offline_dataset_check():
        try:
            yolo = ultralytics.YOLO(source)
        except FileNotFoundError as exc:
            raise FarlError(f"unknown model definition {source} ({exc}): use one of ultralytics' packaged "
                            "definitions such as yolov8n.yaml, or a path to your own") from exc
        except TypeError as exc:  # ultralytics' word for a checkpoint that restricted loading refuses
            raise FarlError(f"{source} is not a plain ultralytics checkpoint ({str(exc).splitlines()[0]}): "
                            "give weights saved by ultralytics training") from exc
        result = yolo.train(data=str(data_yaml), epochs=epochs, imgsz=imgsz, batch=batch, device=device, seed=seed,
                            deterministic=True, workers=0, project=str(out), name=RUN_NAME, exist_ok=True,
                            amp=False, plots=False)
    seconds = time.perf_counter() - started
    with (run_dir / "results.csv").open() as results:  # per-epoch rows; `time` counts training + validation
        epoch_seconds = float(list(csv.DictReader(results))[-1]["time"]) / epochs
    best = Path(yolo.trainer.best)
    if not best.is_file():
        raise FarlError(f"ultralytics finished without best weights in {best.parent}: see its log above")
    box = result.box
    metrics = {
        "mAP50": float(box.map50), "mAP50-95": float(box.map), "precision": float(box.mp), "recall": float(box.mr),
        "per_class_mAP50-95": {result.names[int(c)]: float(box.maps[c]) for c in result.ap_class_index},
        "epochs": epochs, "imgsz": imgsz, "batch": batch, "seed": seed, "device": device, "model": str(model),
        "data": str(data_yaml), "weights": WEIGHTS_NAME, "seconds": round(seconds, 2),
        "seconds_per_epoch": round(epoch_seconds, 2), "ultralytics": ultralytics.__version__,
    }
    if not all(math.isfinite(v) for v in (metrics["mAP50"], metrics["mAP50-95"])):
        raise FarlError(f"validation produced non-finite mAP ({metrics['mAP50']}, {metrics['mAP50-95']}): "
                        "check the dataset's labels")
    write_atomic(weights, lambda path: shutil.copyfile(best, path))
    write_atomic(metrics_file, lambda path: path.write_text(json.dumps(metrics, indent=2)))
    return TrainedDetector(weights=weights, metrics=metrics)


def untrained_detector(path: str | Path, class_names: Sequence[str], definition: str = "yolov8n.yaml",
                       seed: int = 0) -> Path:
    """An untrained net from ultralytics' packaged `definition` with the given classes, saved as weights.

    For timing (a forward pass costs the same whatever the weights) and as the from-scratch start
    of a run; the packaged definitions have COCO's 80 classes, renumbered here to the task's.
    """
    yolo = ultralytics_yolo()
    import torch
    from ultralytics.nn.tasks import yaml_model_load

    path = Path(path)
    if path.exists():
        raise FarlError(f"{path} exists: choose another path for the untrained detector")
    torch.manual_seed(seed)
    spec = yaml_model_load(definition)
    spec["nc"] = len(class_names)
    with tempfile.TemporaryDirectory() as scratch:
        # the file name carries the scale letter ('n') that ultralytics reads the model size from
        spec_file = Path(scratch) / definition.replace("yolov8n", "yolov8n-farl")
        spec_file.write_text(yaml.safe_dump(spec))
        model = yolo(str(spec_file))
    model.model.names = dict(enumerate(class_names))
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(str(path))
    return path
