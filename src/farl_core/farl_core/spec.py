"""Task specs: the observation/action interface a policy and a world model are trained for.

A checkpoint stores its spec; loading it for a task with a different spec is refused, so a
policy trained for one observation layout can never drive a robot that delivers another.
Observations and actions cross every component boundary through `check_observation` and
`check_action`, which turn NaN/inf and shape mistakes into one clear error at the source.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from farl_core.errors import FarlError


class SpecError(FarlError, ValueError):
    """An observation, action or checkpoint does not match the task spec."""


@dataclass(frozen=True)
class TaskSpec:
    """Names and bounds of a task's flat observation and action vectors."""

    name: str
    observation_names: tuple[str, ...]
    action_names: tuple[str, ...]
    action_low: tuple[float, ...]
    action_high: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.action_low) != self.act_dim or len(self.action_high) != self.act_dim:
            raise SpecError(f"task '{self.name}': action bounds must have {self.act_dim} entries")
        if any(lo >= hi for lo, hi in zip(self.action_low, self.action_high, strict=True)):
            raise SpecError(f"task '{self.name}': every action_low must be below action_high")

    @property
    def obs_dim(self) -> int:
        return len(self.observation_names)

    @property
    def act_dim(self) -> int:
        return len(self.action_names)

    def check_observation(self, obs: Any, what: str = "observation") -> np.ndarray:
        """Return `obs` as float32 [..., obs_dim]; raise SpecError on a wrong shape or NaN/inf."""
        return self._check(obs, self.obs_dim, what, self.observation_names)

    def check_action(self, act: Any, what: str = "action") -> np.ndarray:
        """Return `act` as float32 [..., act_dim]; raise SpecError on a wrong shape or NaN/inf."""
        return self._check(act, self.act_dim, what, self.action_names)

    def _check(self, value: Any, dim: int, what: str, names: tuple[str, ...]) -> np.ndarray:
        array = np.asarray(value, dtype=np.float32)
        if array.ndim == 0 or array.shape[-1] != dim:
            raise SpecError(f"{what} for task '{self.name}' has shape {array.shape}, expected (..., {dim})")
        bad = ~np.isfinite(array)
        if bad.any():
            index = int(np.argwhere(bad)[0][-1])
            raise SpecError(f"{what} for task '{self.name}' contains NaN/inf in '{names[index]}' "
                            "(check the sensor or the upstream component that produced it)")
        return array

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "observation_names": list(self.observation_names),
                "action_names": list(self.action_names), "action_low": list(self.action_low),
                "action_high": list(self.action_high)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskSpec:
        return cls(name=data["name"], observation_names=tuple(data["observation_names"]),
                   action_names=tuple(data["action_names"]),
                   action_low=tuple(float(x) for x in data["action_low"]),
                   action_high=tuple(float(x) for x in data["action_high"]))

    def require_same(self, other: TaskSpec, source: str) -> None:
        """Raise a one-line SpecError naming the first difference between self and `other`."""
        if self == other:
            return
        for field in ("name", "observation_names", "action_names", "action_low", "action_high"):
            mine, theirs = getattr(self, field), getattr(other, field)
            if mine != theirs:
                raise SpecError(f"{source} was trained for a different task spec: {field} is {theirs!r}, "
                                f"task '{self.name}' has {mine!r} (train or pick a checkpoint for this task)")
