"""The robot loop's configuration (section `farl_policy` of the parameter file), light enough for the CLI to import.

The section is named after the ROS node that will hold the task monitor and the agent; `farl run`
reads the same section, so one file configures both drivers.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from farl_core.config import param
from farl_core.episodes import EpisodeConfig
from farl_core.task_monitor import MonitorConfig


@dataclass(frozen=True)
class RuntimeConfig:
    """The robot loop's settings (section `farl_policy` of the parameter file: the future policy node's)."""

    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    episodes: EpisodeConfig = field(default_factory=EpisodeConfig)
    goal: tuple[float, float] | None = None     # real robot: where the goal is marked (default: task's region centre)
    start_timeout_s: float = param(600.0, gt=0.0)  # wall seconds to wait for an operator's start key


def demo_runtime(runtime: RuntimeConfig, role: str) -> RuntimeConfig:
    """The runtime of a demonstration of `role`: failure and recovery demonstrations do not end at the goal (a
    guided failure passing through it goes on to its failure; a recovery clip ends by the operator)."""
    if role == "task":
        return runtime
    return replace(runtime, episodes=replace(runtime.episodes, end_on_success=False))
