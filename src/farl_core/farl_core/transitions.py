"""Offline data as flat transition arrays, the form every trainer consumes.

Files are `.npz` archives read with allow_pickle=False (no code can hide in them).  Episodes
are contiguous; an episode ends where `terminated` or `truncated` is set.  `cost` is the 0/1
constraint signal C(s, a) of paper Eq. 1 (1 on the step that causes an IR failure).
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from farl_core.errors import FarlError
from farl_core.spec import TaskSpec


class DataError(FarlError):
    """A data file is missing, corrupt or inconsistent with the task spec."""


@dataclass
class Transitions:
    """N transitions (s, a, r, s', terminated, truncated, cost) as aligned arrays."""

    obs: np.ndarray          # [N, obs_dim] float32
    act: np.ndarray          # [N, act_dim] float32
    rew: np.ndarray          # [N] float32
    next_obs: np.ndarray     # [N, obs_dim] float32
    terminated: np.ndarray   # [N] bool: true end (success or IR failure); no bootstrap
    truncated: np.ndarray    # [N] bool: time limit; bootstrap from next_obs
    cost: np.ndarray         # [N] float32 in {0, 1}

    def __len__(self) -> int:
        return len(self.obs)

    @property
    def done(self) -> np.ndarray:
        return self.terminated | self.truncated

    def episode_slices(self) -> list[slice]:
        """Index ranges of the episodes, in order; a trailing unfinished episode counts too."""
        ends = np.flatnonzero(self.done) + 1
        if len(ends) == 0 or ends[-1] != len(self):
            ends = np.append(ends, len(self))
        starts = np.concatenate([[0], ends[:-1]])
        return [slice(int(s), int(e)) for s, e in zip(starts, ends, strict=True)]

    def subset(self, index: np.ndarray | slice) -> Transitions:
        return Transitions(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @classmethod
    def empty(cls, spec: TaskSpec) -> Transitions:
        """Zero transitions laid out for `spec` (what a collector returns when it found nothing)."""
        vector = {"obs": spec.obs_dim, "next_obs": spec.obs_dim, "act": spec.act_dim}
        flags = ("terminated", "truncated")
        return cls(**{f.name: np.zeros((0, vector[f.name]) if f.name in vector else 0,
                                       dtype=bool if f.name in flags else np.float32) for f in fields(cls)})

    @staticmethod
    def concat(parts: list[Transitions]) -> Transitions:
        return Transitions(**{f.name: np.concatenate([getattr(p, f.name) for p in parts])
                              for f in fields(Transitions)})

    def validate(self, spec: TaskSpec, source: str) -> Transitions:
        """Check shapes against `spec` and finiteness; return self with canonical dtypes."""
        n = len(self.obs)
        for f in fields(self):
            if len(getattr(self, f.name)) != n:
                raise DataError(f"{source}: '{f.name}' has {len(getattr(self, f.name))} rows, 'obs' has {n}")
        self.obs = spec.check_observation(self.obs, f"{source}: obs")
        self.next_obs = spec.check_observation(self.next_obs, f"{source}: next_obs")
        self.act = spec.check_action(self.act, f"{source}: act")
        self.rew = np.asarray(self.rew, dtype=np.float32)
        self.cost = np.asarray(self.cost, dtype=np.float32)
        if not np.all(np.isfinite(self.rew)):
            raise DataError(f"{source}: 'rew' contains NaN/inf")
        self.terminated = np.asarray(self.terminated, dtype=bool)
        self.truncated = np.asarray(self.truncated, dtype=bool)
        return self

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write atomically; never replace an existing dataset unless asked."""
        path = Path(path)
        if path.exists() and not overwrite:
            raise DataError(f"{path} already exists (choose another path, or pass overwrite)")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp.npz")
        np.savez(tmp, **{f.name: getattr(self, f.name) for f in fields(self)})
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | Path, spec: TaskSpec | None = None) -> Transitions:
        path = Path(path)
        if not path.is_file():
            raise DataError(f"data file not found: {path} (pass a .npz written by FARL)")
        try:
            with np.load(path, allow_pickle=False) as archive:
                missing = [f.name for f in fields(cls) if f.name not in archive.files]
                if missing:
                    raise DataError(f"{path}: missing arrays {missing} (expected {[f.name for f in fields(cls)]})")
                data = cls(**{f.name: archive[f.name] for f in fields(cls)})
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
            raise DataError(f"{path} is not a readable .npz archive ({exc})") from None
        return data.validate(spec, str(path)) if spec is not None else data
