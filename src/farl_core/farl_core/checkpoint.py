"""Checkpoints: one directory per model, safetensors weights + JSON metadata, written atomically.

Layout of `<dir>/`:
  weights.safetensors  every tensor of the model (including normalisation statistics)
  meta.json            kind, config, task spec, versions, and anything else JSON-serialisable

Never pickle: weights are plain tensors and everything else is JSON.  A checkpoint is written
into a sibling temporary directory and renamed into place, so an interrupted save leaves either
the old checkpoint or none, never a half-written one; an existing checkpoint is only replaced
when the caller passes overwrite=True.
"""

from __future__ import annotations

import json
import platform
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from farl_core.atomic_files import replace_folder
from farl_core.errors import FarlError
from farl_core.spec import TaskSpec

WEIGHTS = "weights.safetensors"
META = "meta.json"
FORMAT_VERSION = 1


class CheckpointError(FarlError):
    """A checkpoint is missing, corrupt, of the wrong kind, or would be overwritten."""


@dataclass
class Checkpoint:
    """What `load_checkpoint` returns: tensors by name, and the metadata saved with them."""

    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any]

    @property
    def spec(self) -> TaskSpec:
        return TaskSpec.from_dict(self.meta["spec"])

    @property
    def config(self) -> dict[str, Any]:
        return self.meta["config"]


def save_checkpoint(path: str | Path, *, kind: str, tensors: dict[str, torch.Tensor], spec: TaskSpec,
                    config: dict[str, Any], extra: dict[str, Any] | None = None,
                    overwrite: bool = False) -> Path:
    """Write tensors and metadata to directory `path` atomically; refuse to replace unless asked."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise CheckpointError(f"checkpoint {path} already exists (choose another --out, or pass --overwrite)")
    meta = {"format": FORMAT_VERSION, "kind": kind, "spec": spec.to_dict(), "config": config,
            "versions": {"farl": _farl_version(), "torch": torch.__version__,
                         "python": platform.python_version()},
            **(extra or {})}
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(staging / WEIGHTS))
        (staging / META).write_text(json.dumps(meta, indent=2, sort_keys=True))
        replace_folder(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def load_checkpoint(path: str | Path, *, kind: str, spec: TaskSpec | None = None) -> Checkpoint:
    """Read a checkpoint directory; check its kind and, when given, the task spec it was trained for."""
    path = Path(path)
    if not (path / META).is_file() or not (path / WEIGHTS).is_file():
        raise CheckpointError(f"{path} is not a FARL checkpoint (expected {META} and {WEIGHTS} inside)")
    try:
        meta = json.loads((path / META).read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path / META} is corrupt ({exc.msg} at line {exc.lineno})") from None
    if meta.get("kind") != kind:
        raise CheckpointError(f"{path} holds a '{meta.get('kind')}' model, expected '{kind}' "
                              "(check which checkpoint directory you passed)")
    try:
        tensors = load_file(str(path / WEIGHTS))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path / WEIGHTS} is corrupt ({exc}); restore it or retrain") from None
    checkpoint = Checkpoint(tensors, meta)
    if spec is not None:
        spec.require_same(checkpoint.spec, f"checkpoint {path}")
    return checkpoint


def _farl_version() -> str:
    from farl_core import __version__

    return __version__
