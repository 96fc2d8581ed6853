"""Where configuration files live and which dataclass validates each node section.

The registry maps ROS node names to the config dataclass of the component that node wraps;
later components add their entry here when they gain a node.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from farl.benchmark.config import FailureBenchConfig
from farl.runtime_config import RuntimeConfig
from farl.training import TrainingConfig
from farl_control.config import BridgeConfig
from farl_perception.config import PerceptionConfig

NODE_SCHEMAS: dict[str, type] = {
    "farl_bridge": BridgeConfig,
    "farl_perception": PerceptionConfig,
    "farl_policy": RuntimeConfig,               # the robot loop: task monitor, episodes (`farl run`)
    "farl_training": TrainingConfig,            # not a node: the learning jobs of the `farl` CLI
    "farl_failurebench": FailureBenchConfig,    # not a node: `farl bench failurebench`
}


def default_config_path(name: str = "farl.yaml") -> Path:
    """A shipped config file: $FARL_CONFIG (farl.yaml only), the source tree, then share/farl/config."""
    if name == "farl.yaml" and (env := os.environ.get("FARL_CONFIG")):
        return Path(env)
    source_tree = Path(__file__).resolve().parents[3] / "config" / name
    if source_tree.is_file():
        return source_tree
    return Path(sys.prefix) / "share" / "farl" / "config" / name
