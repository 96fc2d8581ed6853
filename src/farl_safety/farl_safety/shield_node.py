"""ROS 2 node `farl_safety`: /farl/action/proposed in, /farl/action/command and /farl/safety out.

A thin adapter (DESIGN.md) around `Shield`: each proposed Action carries the observation it was
chosen for; the shield scores (observation, action) with the H-step safety critic and, above
eps_safe, replaces the action with the recovery policy's.  The command and the verdict keep the
proposal's header stamp, which is how the policy node matches them to its control step.  This is
the only publisher of /farl/action/command in deploy and finetune mode: if this process dies,
commands stop and the bridge's watchdog stops the arm; nothing reaches the bridge unshielded.

In finetune mode the task policy changes with every PPO update, and the critic's rollouts must
use the current one: when a proposal's `policy_version` is newer than the loaded policy, the
policy node has already written it to `updated_policy` (between episodes), and it is reloaded.

Without a recovery policy and world model (`--no-shield` runs) the node passes proposals through
as commands with a verdict of risk NaN, source "task": the run says it is unshielded.

Parameters (section `farl_safety`): task, task_policy, recovery_policy, world_model (checkpoint
directories as `farl train` writes them), updated_policy, and config_file: the parameter file whose
`farl_training` section holds the shield (eps_safe, update_with) and safety-critic settings, the same
file and section `farl run` reads.  QoS: reliable, depth 1 (a stale action is worth nothing).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy

from farl_core.checkpoint import load_checkpoint
from farl_core.config import from_mapping, read_yaml, section_parameters
from farl_core.errors import ConfigError, FarlError
from farl_core.franka_tasks import get_franka_task
from farl_core.run_node import Process, read_own_parameters, run
from farl_interfaces.msg import Action, SafetyVerdict
from farl_policy.gaussian import GaussianPolicy
from farl_safety.safety_critic import SafetyCritic, SafetyCriticConfig
from farl_safety.shield import Shield, ShieldConfig
from farl_safety.world_model import WorldModel

NODE = "farl_safety"
NODE_PARAMETERS = {"task": "fragile-push-wall", "task_policy": "", "recovery_policy": "", "world_model": "",
                   "updated_policy": "", "config_file": ""}
TRAINING_SECTION = "farl_training"
RELIABLE_LATEST = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)


@dataclass(frozen=True)
class ShieldSettings:
    """The part of `farl_training` the shield uses (the policy node validates the whole section)."""

    safety_critic: SafetyCriticConfig = field(default_factory=SafetyCriticConfig)
    shield: ShieldConfig = field(default_factory=ShieldConfig)


def shield_settings(config_file: str) -> ShieldSettings:
    """The shield's settings from the parameter file's `farl_training` section (defaults without a file)."""
    if not config_file:
        return ShieldSettings()
    path = Path(config_file)
    document = read_yaml(path)
    if TRAINING_SECTION not in document:
        return ShieldSettings()
    params = section_parameters(path, TRAINING_SECTION, document[TRAINING_SECTION])
    own = {key: params[key] for key in ("safety_critic", "shield") if key in params}
    return from_mapping(ShieldSettings, own, where=f"{path}: {TRAINING_SECTION}")


class ShieldNode(Node):
    def __init__(self) -> None:
        super().__init__(NODE, automatically_declare_parameters_from_overrides=True)
        own = read_own_parameters(self, NODE_PARAMETERS)
        task = get_franka_task(own["task"])
        self.spec = task.spec
        self.shield: Shield | None = None
        self._updated = Path(own["updated_policy"]) if own["updated_policy"] else None
        self._version = 0
        if own["recovery_policy"] or own["world_model"]:
            self.shield = self._load(own)
        self._commands = self.create_publisher(Action, "/farl/action/command", RELIABLE_LATEST)
        self._verdicts = self.create_publisher(SafetyVerdict, "/farl/safety", RELIABLE_LATEST)
        self.create_subscription(Action, "/farl/action/proposed", self._on_proposal, RELIABLE_LATEST)
        what = (f"eps_safe {self.shield.config.eps_safe:.4g}, update_with {self.shield.config.update_with}"
                if self.shield is not None else "UNSHIELDED (no recovery policy / world model): commands pass through")
        self.get_logger().info(f"shield up for {task.name}: {what}")

    def _load(self, own: dict[str, Any]) -> Shield:
        missing = [name for name in ("task_policy", "recovery_policy", "world_model") if not own[name]]
        if missing:
            raise ConfigError(f"node {NODE}: the shield needs task_policy, recovery_policy and world_model; "
                              f"{', '.join(missing)} not set (or set none of the last two for an unshielded run)")
        settings = shield_settings(own["config_file"])
        self._policy = GaussianPolicy.load(Path(own["task_policy"]) / "policy", kind="task_policy", spec=self.spec)
        recovery = GaussianPolicy.load(Path(own["recovery_policy"]) / "policy", kind="recovery_policy", spec=self.spec)
        model = WorldModel.load(Path(own["world_model"]) / "world_model", spec=self.spec)
        return Shield(SafetyCritic(model, self._policy, settings.safety_critic), recovery, settings.shield)

    def _on_proposal(self, msg: Action) -> None:
        proposed = np.asarray(msg.delta, dtype=np.float32)
        observation = np.asarray(msg.observation, dtype=np.float32)
        if self.shield is None:
            executed, verdict = proposed, SafetyVerdict(risk=math.nan, threshold=math.nan, overridden=False,
                                                        source="task", latency=0.0)
        else:
            try:
                self._follow_policy(int(msg.policy_version))
                actions, verdicts = self.shield.filter(observation[None], proposed[None])
            except FarlError as exc:  # NaN, wrong size: nothing is sent, the bridge's watchdog holds the arm
                self.get_logger().error(f"proposal refused: {exc}")
                return
            executed, result = actions[0], verdicts[0]
            verdict = SafetyVerdict(risk=result.risk, threshold=result.threshold, overridden=result.overridden,
                                    source=result.source, latency=result.latency_s)
        verdict.header = msg.header
        self._commands.publish(Action(header=msg.header, delta=[float(v) for v in executed],
                                      observation=msg.observation, log_prob=msg.log_prob,
                                      policy_version=msg.policy_version))
        self._verdicts.publish(verdict)

    def _follow_policy(self, version: int) -> None:
        """Load the fine-tuned task policy the proposal was made with, when it is newer than ours."""
        if version <= self._version or self._updated is None:
            return
        checkpoint = load_checkpoint(self._updated, kind="task_policy", spec=self.spec)
        self._policy.load_state_dict(checkpoint.tensors)
        self._version = int(checkpoint.meta.get("updates", version))
        self.get_logger().info(f"task policy reloaded: PPO update {self._version}")


def process() -> Process:
    return Process(NODE, lambda: [ShieldNode()], threads=1)


def main(args: list[str] | None = None) -> None:
    run(process(), args)
