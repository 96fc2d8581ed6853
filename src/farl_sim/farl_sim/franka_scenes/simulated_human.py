"""The person of the paper's real-robot protocol, in franky-sim: resets the scene, disturbs it, says "start".

On the Panda a human puts the objects back between episodes (while PPO updates) and, in Disturbed
Push, moves the vase during them.  `SimulatedHuman` does both on the simulated scene, so the whole
online loop runs unattended: `reset_scene` places objects at sampled start positions and a new
goal (the arm must be home first: the runner homes it), `during_episode` lets the scene's scripted
human (human.py) move the vase.  It implements the runner's `SceneOperator` interface; on the
robot the operator console's `ManualReset` does (waits for the person's start key instead).
"""

from __future__ import annotations

import numpy as np

from farl_control.embedded_sim import EmbeddedFrankaSim
from farl_sim.franka_scenes.scenes import FrankaScene


class SimulatedHuman:
    """Resets and disturbs one scene running in `sim`, with its own seeded generator."""

    auto_start = True   # a scripted reset is ready at once: no key to wait for

    def __init__(self, scene: FrankaScene, sim: EmbeddedFrankaSim, seed: int) -> None:
        self.scene = scene
        self.sim = sim
        self.rng = np.random.default_rng(seed)
        self._episode_start = 0.0

    def reset_scene(self, episode: int, now: float) -> np.ndarray:
        """Place the objects for episode `episode` and return its goal (x, y)."""
        del episode
        self.scene.reset(self.sim, self.rng)
        self._episode_start = now
        return self.scene.goal

    def during_episode(self, now: float) -> None:
        """Called once per control tick with the robot clock."""
        self.scene.disturb(self.sim, now - self._episode_start, self.rng)

    def place(self, positions: dict[str, np.ndarray]) -> None:
        """Put movable objects somewhere on purpose (scripted near-failure starts, tests)."""
        for name, position in positions.items():
            self.scene.place(self.sim, name, np.asarray(position, dtype=float))
